package worker

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// maxDuplicateProblems bounds how many duplicate keys are listed one by
// one; a hostile body could hold thousands.
const maxDuplicateProblems = 20

// plainKeyRE matches keys that a problem's path shows without quotes.
var plainKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// maxNesting is encoding/json's limit on nesting: a body nested deeper is
// a syntax error there.
const maxNesting = 10000

// linearKeys is how many keys of one object are compared one by one
// before a map counts them.
const linearKeys = 16

// scanned is what one pass over a request body finds: whether it is valid
// JSON, the last value of each known top-level key (encoding/json keeps
// the last), the unknown top-level keys, and the duplicate keys at every
// level.
type scanned struct {
	// str is the body as a string: keys and values are cut from it.
	str     string
	object  bool // the body is an object
	values  [len(requestFieldNames)]fieldValue
	unknown []string // in order of first appearance, each once
	// dups are the duplicate-key problems, as duplicateKeys lists them;
	// topDups the top-level keys given more than once.
	dups    []string
	topDups []string
	// ascii: the body has no byte above 0x7f, so it is valid UTF-8.
	ascii bool
	// dataKeys counts the keys of the last "data" object, duplicates
	// included: a size for its map.
	dataKeys int
}

// fieldValue is where a top-level key's value lies in the body, and how
// deeply it nests objects and arrays (0 for a scalar).
type fieldValue struct {
	start, end int
	depth      int
	set        bool
}

// duplicateKeys lists every key that appears more than once in one object
// of body, anywhere in it, as "where: duplicate key K" (or "duplicate key
// K" at the top level), in the order of their second appearance; each key
// of an object is listed once. encoding/json would keep the last value
// silently, so the request would mean something else than it appears to
// (two "to" lists, an action's "type" given twice, a "data" field whose
// first value the author is looking at), and a key written with escapes
// ("t\u006f") would pass for another. body must be valid JSON.
func duplicateKeys(body []byte) (problems []string, top map[string]bool) {
	var sc scanned
	sc.scan(body)
	top = map[string]bool{}
	for _, k := range sc.topDups {
		top[k] = true
	}
	return sc.dups, top
}

// frame is an open object or array. Paths are built only for a
// duplicate, from the keys and indexes on the stack.
type frame struct {
	obj  bool
	key  string // in an object: the key whose value comes next
	idx  int    // in an array: the index of the value that comes next
	keys int    // in an object: where its keys start in scanner.keys
	// counts counts an object's keys once it has more than linearKeys.
	counts map[string]int
}

var dataField = requestFieldIndex("data")

type scanState int

const (
	wantValue scanState = iota
	afterValue
	wantKey
)

// scan reads body once and reports whether it is valid JSON, as
// encoding/json decides it (json.Valid): for a valid body it fills sc.
func (sc *scanned) scan(body []byte) bool {
	sc.str = string(body)
	s := sc.str
	var stackBuf [8]frame
	stack := stackBuf[:0]
	var keysBuf [32]string
	keys := keysBuf[:0]
	more := 0    // duplicates past maxDuplicateProblems
	field := -1  // the top-level key whose value is being read: its index, or -1
	deepest := 0 // how deep the stack went in that value
	high := false
	objects := 0

	pos := 0
	st := wantValue
	for {
		end := pos // where the last value ended, before the space after it
		pos = skipSpace(s, pos)
		switch st {
		case wantValue:
			if pos >= len(s) {
				return false
			}
			switch c := s[pos]; {
			case c == '{' || c == '[':
				if len(stack) >= maxNesting {
					return false
				}
				f := frame{obj: c == '{'}
				if f.obj {
					objects++
					f.keys = len(keys)
				}
				stack = append(stack, f)
				deepest = max(deepest, len(stack))
				if objects == 1 && len(stack) == 1 && f.obj {
					sc.object = true
				}
				pos = skipSpace(s, pos+1)
				if pos < len(s) && (s[pos] == '}' && f.obj || s[pos] == ']' && !f.obj) {
					stack = stack[:len(stack)-1]
					if f.obj {
						keys = keys[:f.keys]
					}
					pos++
					st = afterValue
				} else if f.obj {
					st = wantKey
				}
				continue
			case c == '"':
				end, h, ok := stringEnd(s, pos)
				if !ok {
					return false
				}
				high = high || h
				pos = end
			case c == '-' || '0' <= c && c <= '9':
				end, ok := numberEnd(s, pos)
				if !ok {
					return false
				}
				pos = end
			default:
				end, ok := literalEnd(s, pos)
				if !ok {
					return false
				}
				pos = end
			}
			st = afterValue

		case afterValue:
			if len(stack) == 1 && field >= 0 {
				sc.values[field].end = end
				sc.values[field].depth = deepest - 1
				field = -1
			}
			if len(stack) == 0 {
				sc.ascii = !high
				if more > 0 {
					sc.dups = append(sc.dups, fmt.Sprintf("... and %d more duplicate keys", more))
				}
				return pos == len(s)
			}
			if pos >= len(s) {
				return false
			}
			top := &stack[len(stack)-1]
			switch c := s[pos]; {
			case c == ',':
				pos++
				if top.obj {
					st = wantKey
				} else {
					top.idx++
					st = wantValue
				}
			case c == '}' && top.obj:
				keys = keys[:top.keys]
				stack = stack[:len(stack)-1]
				pos++
			case c == ']' && !top.obj:
				stack = stack[:len(stack)-1]
				pos++
			default:
				return false
			}

		case wantKey:
			if pos >= len(s) || s[pos] != '"' {
				return false
			}
			end, h, ok := stringEnd(s, pos)
			if !ok {
				return false
			}
			high = high || h
			key := decodeKey(s[pos:end], h)
			pos = skipSpace(s, end)
			if pos >= len(s) || s[pos] != ':' {
				return false
			}
			pos = skipSpace(s, pos+1)
			top := &stack[len(stack)-1]
			top.key = key
			// Count the key among its object's: a duplicate is listed
			// at its second appearance.
			var n int
			if top.counts != nil {
				n = top.counts[key] + 1
				top.counts[key] = n
			} else {
				n = 1
				for _, k := range keys[top.keys:] {
					if k == key {
						n++
					}
				}
				keys = append(keys, key)
				if len(keys)-top.keys > linearKeys {
					top.counts = make(map[string]int, 2*linearKeys)
					for _, k := range keys[top.keys:] {
						top.counts[k]++
					}
				}
			}
			if n == 2 {
				if len(sc.dups) < maxDuplicateProblems {
					where := ""
					if p := path(stack); p != "" {
						where = p + ": "
					}
					sc.dups = append(sc.dups, where+"duplicate key "+quote(key))
				} else {
					more++
				}
			}
			if len(stack) == 2 && field == dataField {
				sc.dataKeys++
			}
			if len(stack) == 1 && sc.object {
				if n == 2 {
					sc.topDups = append(sc.topDups, key)
				}
				field = requestFieldIndex(key)
				if field == dataField {
					sc.dataKeys = 0
				}
				if field >= 0 {
					sc.values[field] = fieldValue{start: pos, set: true}
				} else if n == 1 {
					sc.unknown = append(sc.unknown, key)
				}
				deepest = 1
			}
			st = wantValue
		}
	}
}

// path is the path of the value that comes next in the innermost
// container of stack.
func path(stack []frame) string {
	p := ""
	for _, f := range stack[:len(stack)-1] {
		p = childPath(p, f.obj, f.key, f.idx)
	}
	return p
}

// childPath is the path of the value that comes next in a container.
func childPath(parent string, obj bool, key string, idx int) string {
	if !obj {
		return fmt.Sprintf("%s[%d]", parent, idx)
	}
	if !plainKeyRE.MatchString(key) {
		return fmt.Sprintf("%s[%s]", parent, quote(key))
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func skipSpace(s string, i int) int {
	for i < len(s) {
		switch s[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the index just after the JSON string opening at s[i],
// whether it holds a byte above 0x7f, and whether it is a valid JSON
// string: no control characters, only JSON's escapes.
func stringEnd(s string, i int) (end int, high, ok bool) {
	j := i + 1
	// Eight bytes at a time while none is a quote, a backslash, a control
	// character or above 0x7f: a task token is a kilobyte or two of those.
	for ; j+8 <= len(s); j += 8 {
		w := uint64(s[j]) | uint64(s[j+1])<<8 | uint64(s[j+2])<<16 | uint64(s[j+3])<<24 |
			uint64(s[j+4])<<32 | uint64(s[j+5])<<40 | uint64(s[j+6])<<48 | uint64(s[j+7])<<56
		if (w-0x2020202020202020|w)&0x8080808080808080 != 0 || hasZeroByte(w^0x2222222222222222) || hasZeroByte(w^0x5c5c5c5c5c5c5c5c) {
			break
		}
	}
	for ; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			return j + 1, high, true
		case c < 0x20:
			return 0, false, false
		case c >= 0x80:
			high = true
		case c == '\\':
			j++
			if j >= len(s) {
				return 0, false, false
			}
			switch s[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(s) {
					return 0, false, false
				}
				for k := j + 1; k <= j+4; k++ {
					if !isHex(s[k]) {
						return 0, false, false
					}
				}
				j += 4
			default:
				return 0, false, false
			}
		}
	}
	return 0, false, false
}

// hasZeroByte reports whether one of w's bytes is zero.
func hasZeroByte(w uint64) bool {
	return (w-0x0101010101010101)&^w&0x8080808080808080 != 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// numberEnd returns the index just after the JSON number starting at
// s[i], and whether it is one: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func numberEnd(s string, i int) (int, bool) {
	digits := func(i int) int {
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i
	}
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		i = digits(i + 1)
	default:
		return 0, false
	}
	if i < len(s) && s[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func literalEnd(s string, i int) (int, bool) {
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(s)-i >= len(lit) && s[i:i+len(lit)] == lit {
			return i + len(lit), true
		}
	}
	return 0, false
}

// decodeKey turns a quoted JSON key into its text, escapes and all, as
// encoding/json reads it: invalid UTF-8 becomes U+FFFD there, so only a
// key without escapes that is ASCII or valid UTF-8 is taken as it is.
func decodeKey(quoted string, high bool) string {
	inner := quoted[1 : len(quoted)-1]
	if (!high || utf8.ValidString(inner)) && strings.IndexByte(inner, '\\') < 0 {
		return inner
	}
	var s string
	if err := json.Unmarshal([]byte(quoted), &s); err != nil {
		return inner
	}
	return s
}
