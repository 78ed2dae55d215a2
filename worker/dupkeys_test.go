package worker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/votes"
)

// FuzzScan holds the one pass over a request body to what encoding/json
// and the separate passes it replaced make of the same body: the same
// verdict on its validity (json.Valid), the same last value of each known
// top-level key and the same unknown keys (json.Unmarshal into a map),
// the same duplicate-key problems (duplicateKeysBefore), the same depth
// of each value, and for "data" the same value decoded (encoding/json
// with UseNumber). Seeds: FuzzDecodeRequest's corpus and the bodies below.
func FuzzScan(f *testing.F) {
	for _, s := range []string{
		`{"taskToken":"T0KEN","to":["ben@example.com"],"subject":"Deploy 42"}`,
		`{"t\u0061skToken":"a","taskToken":"b","data":{"a":1,"\u0061":2,"b":[{"c":1,"c":2}]}}`,
		`{"data":{"n":-0.5e+10,"big":12345678901234567890,"s":"\u00e9\n\"","t":true,"f":false,"z":null,"l":[],"o":{}}}`,
		`{"data":{"k":"\xff"},"\xfe":1,"\xfe":2}`,
		` {"to" : [ "a@b.c" , "d@e.f" ] , "cc":[ ] } `,
		`{"a":1}x`, `{"a":01}`, `{"a":1.}`, `{"a":"\x01"}`, `{"a":"\u12"}`, `{"a" 1}`, `{,}`, `{"a":1,}`,
		`[{"a":1,"a":2}]`, `"x"`, `null`, `{}`, `{"data":[[[[]]]]}`,
		`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"a":18,"q":19}`,
	} {
		f.Add([]byte(s))
	}
	corpus, _ := filepath.Glob("testdata/fuzz/FuzzDecodeRequest/*")
	for _, p := range corpus {
		if b, ok := fuzzSeed(f, p); ok {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var sc scanned
		ok := sc.scan(body)
		if ok != json.Valid(body) {
			t.Fatalf("scan = %t, json.Valid = %t", ok, json.Valid(body))
		}
		if !ok {
			return
		}
		var raw map[string]json.RawMessage
		isObject := json.Unmarshal(body, &raw) == nil && raw != nil
		if sc.object != isObject {
			t.Fatalf("scan: object = %t, encoding/json: %t", sc.object, isObject)
		}
		wantDups, wantTop := duplicateKeysBefore(body)
		if diff := cmp.Diff(wantDups, sc.dups); diff != "" {
			t.Fatalf("duplicate keys (-before +scan):\n%s", diff)
		}
		if !isObject {
			return
		}
		var top []string
		for k := range wantTop {
			top = append(top, k)
		}
		if diff := cmp.Diff(sorted(top), sorted(slices.Clone(sc.topDups))); diff != "" {
			t.Fatalf("top-level duplicates (-before +scan):\n%s", diff)
		}
		var unknown []string
		for k := range raw {
			if !slices.Contains(requestFields, k) {
				unknown = append(unknown, k)
			}
		}
		if diff := cmp.Diff(sorted(unknown), sorted(slices.Clone(sc.unknown))); diff != "" {
			t.Fatalf("unknown keys (-encoding/json +scan):\n%s", diff)
		}
		for i, name := range requestFieldNames {
			want, has := raw[name]
			v := sc.values[i]
			if v.set != has || has && !bytes.Equal(body[v.start:v.end], want) {
				t.Fatalf("%s: scan %t %q, encoding/json %t %q", name, v.set, body[v.start:v.end], has, want)
			}
			if has && v.depth != depthBefore(want) {
				t.Fatalf("%s: depth %d, want %d", name, v.depth, depthBefore(want))
			}
		}
		if v := sc.values[requestFieldIndex("data")]; v.set && v.depth <= MaxDataDepth && body[v.start] == '{' {
			d := decoder{body: body, sc: sc, utf8: sc.ascii || utf8.Valid(body)}
			got, end := d.value(sc.str, v.start)
			if end != v.end {
				t.Fatalf("data decoded to byte %d, ends at %d", end, v.end)
			}
			dec := json.NewDecoder(bytes.NewReader(raw["data"]))
			dec.UseNumber()
			want := map[string]any{}
			if err := dec.Decode(&want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("data (-encoding/json +decoded):\n%s", diff)
			}
		}
	})
}

// TestScanDeepNesting: encoding/json refuses a body nested deeper than
// 10,000 levels, and so does the scan, so that such a body is refused with
// encoding/json's words.
func TestScanDeepNesting(t *testing.T) {
	for _, n := range []int{maxNesting - 1, maxNesting, maxNesting + 1} {
		body := []byte(`{"data":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}`)
		var sc scanned
		if got, want := sc.scan(body), json.Valid(body); got != want {
			t.Errorf("nesting %d: scan = %t, json.Valid = %t", n, got, want)
		}
	}
	body := []byte(`{"taskToken":"T0KEN","data":` + strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting) + `}`)
	var raw map[string]json.RawMessage
	err := json.Unmarshal(body, &raw)
	se, ok := err.(*json.SyntaxError)
	if !ok {
		t.Fatalf("encoding/json: %v, want a syntax error", err)
	}
	_, err = DecodeRequest(body, DecodeOptions{Now: testNow})
	want := fmt.Sprintf("invalid request: body is not a JSON object (syntax error at byte %d)", se.Offset)
	if err == nil || err.Error() != want {
		t.Fatalf("DecodeRequest = %v, want %s", err, want)
	}
}

// TestScanManyKeys: an object with more keys than are compared one by one
// still has each duplicate found once, at its second appearance.
func TestScanManyKeys(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"data":{`)
	const distinct = 2*linearKeys - 2 // more than listed one by one
	for i := range 2 * distinct {
		fmt.Fprintf(&b, `"k%d":%d,`, i%distinct, i)
	}
	b.WriteString(`"k1":0}}`)
	body := []byte(b.String())
	var sc scanned
	if !sc.scan(body) {
		t.Fatal("scan refused a valid body")
	}
	want, _ := duplicateKeysBefore(body)
	if len(want) != maxDuplicateProblems+1 {
		t.Fatalf("reference found %d problems, want %d listed and a count", len(want), maxDuplicateProblems)
	}
	if diff := cmp.Diff(want, sc.dups); diff != "" {
		t.Fatalf("duplicate keys (-before +scan):\n%s", diff)
	}
}

func sorted(s []string) []string {
	sort.Strings(s)
	return s
}

// fuzzSeed reads a seed file of the go test fuzz v1 format holding one
// []byte.
func fuzzSeed(tb testing.TB, path string) ([]byte, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	lines := strings.SplitN(string(b), "\n", 2)
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		return nil, false
	}
	v := strings.TrimSpace(lines[1])
	if !strings.HasPrefix(v, "[]byte(") || !strings.HasSuffix(v, ")") {
		return nil, false
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(v, "[]byte("), ")"))
	if err != nil {
		return nil, false
	}
	return []byte(s), true
}

// The duplicate-key scan and the depth of a value as they were before the
// one pass, kept as the reference FuzzScan holds the pass to.

func duplicateKeysBefore(body []byte) (problems []string, top map[string]bool) {
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
			p = childPathBefore(p, f.obj, f.key, f.idx)
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
			j := stringEndBefore(body, i)
			if expectKey {
				expectKey = false
				top := &stack[len(stack)-1]
				top.key = decodeKeyBefore(body[i : j+1])
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
func childPathBefore(parent string, obj bool, key string, idx int) string {
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
func stringEndBefore(body []byte, i int) int {
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
func decodeKeyBefore(quoted []byte) string {
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

// depthBefore returns how deeply the JSON value b nests objects and arrays,
// without decoding it (b is already known to be valid JSON).
func depthBefore(b []byte) int {
	n, deepest, inString, escaped := 0, 0, false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			n++
			deepest = max(deepest, n)
		case c == '}' || c == ']':
			n--
		}
	}
	return deepest
}

// FuzzActionAndOutput holds the decoding of an action and of its output
// without encoding/json to what encoding/json made of them before: the
// same approval.Action for every action plainAction takes, and for every
// output the same problems and the same compacted bytes as outputBefore.
func FuzzActionAndOutput(f *testing.F) {
	for _, s := range []string{
		`{"name":"approve","label":"Yes","type":"success","output":{"approved":true}}`,
		`{"name":"snooze","type":"heartbeat","output":null}`,
		`{"name":"reject","type":"failure","error":"No","cause":"because"}`,
		`{ "n\u0061me" : "a" , "type":"success", "output" : { "decision" : 1, "a" : [ 1 , "x y" ] } }`,
		`{"name":"a","name":5}`, `{"Name":"a"}`, `{"name":"a","extra":1}`, `{"name":"\u00e9"}`, `{"output":[1]}`,
		`{"output":{"decisions":[],"decisi\u006fn":"x"}}`, `[]`, `"x"`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		d := decoder{utf8: utf8.Valid(b)}
		if a, output, ok := d.plainAction(string(b)); ok {
			var want approval.Action
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&want); err != nil {
				t.Fatalf("plainAction took %q, encoding/json: %v", b, err)
			}
			if output != string(want.Output) {
				t.Fatalf("output %q, encoding/json %q", output, want.Output)
			}
			want.Output = nil
			if diff := cmp.Diff(want, a); diff != "" {
				t.Fatalf("action (-encoding/json +plainAction):\n%s", diff)
			}
		}
		if bytes.TrimSpace(b)[0] != '{' && bytes.TrimSpace(b)[0] != '[' {
			return
		}
		out := string(bytes.TrimSpace(b)) // a value as written, as the scan finds it
		got := d.output(func() string { return "actions[0]" }, out)
		var before decoder
		want := before.outputBefore("actions[0]", json.RawMessage(out))
		if diff := cmp.Diff(before.problems, d.problems); diff != "" {
			t.Fatalf("problems (-before +now):\n%s", diff)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("output %q, before %q", got, want)
		}
	})
}

// outputBefore is decoder.output as it was, with encoding/json.
func (d *decoder) outputBefore(where string, out json.RawMessage) json.RawMessage {
	if out == nil {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(out, &obj); err != nil || obj == nil {
		d.problemf("%s: output must be a JSON object", where)
		return nil
	}
	if _, ok := obj[approval.DecisionKey]; ok {
		d.problemf("%s: output may not use the key %q (the decision goes there)", where, approval.DecisionKey)
	}
	if _, ok := obj[votes.DecisionsKey]; ok {
		d.problemf("%s: output may not use the key %q (the approving votes go there)", where, votes.DecisionsKey)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, out); err != nil {
		d.problemf("%s: output must be a JSON object", where)
		return nil
	}
	if buf.Len() > MaxOutputLen {
		d.problemf("%s: output longer than %d bytes", where, MaxOutputLen)
	}
	return buf.Bytes()
}

// TestStringEndEveryPosition: the string scan reads eight bytes at a
// time; a quote, backslash, control character or byte above 0x7f at any
// place in or around a block is still found.
func TestStringEndEveryPosition(t *testing.T) {
	for _, special := range []string{`"`, `\"`, `\\`, `\u0041`, `\x`, "\x01", "\x1f", "\x7f", "\xc3\xa9", "\xff"} {
		for n := range 20 {
			s := `"` + strings.Repeat("a", n) + special + strings.Repeat("b", 20-n) + `"`
			end, high, ok := stringEnd(s, 0)
			var v string
			err := json.Unmarshal([]byte(s), &v)
			if ok != (err == nil) && !(special == `"` && ok) {
				t.Fatalf("%q: ok = %t, encoding/json: %v", s, ok, err)
			}
			if want := strings.Index(s[1:], `"`) + 2; special == `"` && end != want {
				t.Fatalf("%q: end = %d, want %d", s, end, want)
			}
			if ok && special != `"` && end != len(s) {
				t.Fatalf("%q: end = %d, want %d", s, end, len(s))
			}
			wantHigh := false
			for i := range len(s) {
				wantHigh = wantHigh || s[i] >= 0x80
			}
			if ok && special != `"` && high != wantHigh {
				t.Fatalf("%q: high = %t, want %t", s, high, wantHigh)
			}
		}
	}
}
