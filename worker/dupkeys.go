package worker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"unicode/utf8"
)

// maxDuplicateProblems bounds how many duplicate keys are listed one by
// one; a hostile body could hold thousands.
const maxDuplicateProblems = 20

// plainKeyRE matches keys that a problem's path shows without quotes.
var plainKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// duplicateKeys lists every key that appears more than once in one object
// of body, anywhere in it, as "where: duplicate key K" (or "duplicate key
// K" at the top level), in the order of their second appearance; each key
// of an object is listed once. encoding/json would keep the last value
// silently, so the request would mean something else than it appears to
// (two "to" lists, an action's "type" given twice, a "data" field whose
// first value the author is looking at), and a key written with escapes
// ("t\u006f") would pass for another. body must be valid JSON.
func duplicateKeys(body []byte) (problems []string, top map[string]bool) {
	// A frame is an open object or array. Paths are built only for a
	// duplicate, from the keys and indexes on the stack.
	type frame struct {
		obj bool
		id  int    // an object's number, to tell its keys from others'
		key string // in an object: the key whose value comes next
		idx int    // in an array: the index of the value that comes next
	}
	type objKey struct {
		obj int
		key string
	}
	seen := map[objKey]int{} // times seen
	var stack []frame
	path := func() string {
		p := ""
		for _, f := range stack[:len(stack)-1] {
			p = childPath(p, f.obj, f.key, f.idx)
		}
		return p
	}
	objects, more := 0, 0
	expectKey := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case '{', '[':
			f := frame{obj: c == '{'}
			if f.obj {
				objects++
				f.id = objects
			}
			stack = append(stack, f)
			expectKey = f.obj
		case '}', ']':
			stack = stack[:len(stack)-1]
			expectKey = false
		case ',':
			if top := &stack[len(stack)-1]; top.obj {
				expectKey = true
			} else {
				top.idx++
			}
		case '"':
			j := stringEnd(body, i)
			if expectKey {
				expectKey = false
				top := &stack[len(stack)-1]
				top.key = decodeKey(body[i : j+1])
				k := objKey{top.id, top.key}
				if seen[k]++; seen[k] == 2 {
					if len(problems) < maxDuplicateProblems {
						where := ""
						if p := path(); p != "" {
							where = p + ": "
						}
						problems = append(problems, where+"duplicate key "+quote(top.key))
					} else {
						more++
					}
				}
			}
			i = j
		}
	}
	if more > 0 {
		problems = append(problems, fmt.Sprintf("... and %d more duplicate keys", more))
	}
	top = map[string]bool{}
	for k, n := range seen {
		if k.obj == 1 && n > 1 {
			top[k.key] = true
		}
	}
	return problems, top
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

// stringEnd returns the index of the quote that closes the string opening
// at body[i].
func stringEnd(body []byte, i int) int {
	for j := i + 1; j < len(body); j++ {
		switch body[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return len(body) - 1
}

// decodeKey turns a quoted JSON key into its text, escapes and all, as
// encoding/json reads it: invalid UTF-8 becomes U+FFFD there, so only a
// valid key without escapes is taken as it is.
func decodeKey(quoted []byte) string {
	inner := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return string(inner)
	}
	return s
}
