package redeemer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

// Limits of a JSON callback's payload. It lands in the decision, which
// travels in the task's output and the votes table, so it is kept far
// below those limits; the request body limit (maxBody) bounds it first.
const (
	// MaxPayloadBytes is the largest payload, compacted.
	MaxPayloadBytes = 8 << 10
	// MaxPayloadDepth bounds the nesting of objects and arrays in it.
	MaxPayloadDepth = 16
)

// outBodyInvalid is a JSON callback body the redeemer cannot take.
var outBodyInvalid = outcome{Name: "body_invalid", Status: http.StatusBadRequest, Title: "Request not understood",
	Message: "Nothing was recorded: the request body needs a change."}

// decisionInput is what a POST adds to the link: the approver's comment
// and, from a JSON caller, a payload for decision.payload.
type decisionInput struct {
	comment string
	payload json.RawMessage
}

// isJSONBody reports whether r sends JSON: Content-Type application/json,
// in UTF-8 if it names a charset.
func isJSONBody(r *http.Request) bool {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

// readDecisionInput reads a POST's body, a form or JSON, and returns what
// it adds to the decision; when it cannot be taken, the outcome to answer
// and a message saying why.
func readDecisionInput(r *http.Request) (decisionInput, outcome, string) {
	if !isJSONBody(r) {
		comment, problem := readComment(r)
		return decisionInput{comment: comment}, outCommentInvalid, problem
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return decisionInput{}, outBodyInvalid, fmt.Sprintf("The body is larger than %d bytes.", maxBody)
		}
		return decisionInput{}, outBodyInvalid, "The body could not be read."
	}
	return parseCallback(body)
}

// callbackFields are the keys a JSON callback may have.
var callbackFields = []string{"comment", "payload"}

// parseCallback reads a JSON callback body, {"comment": "...", "payload":
// {...}}, both optional: the comment under the form's rules, the payload a
// JSON object within MaxPayloadBytes and MaxPayloadDepth. Unknown or
// repeated keys are problems, so that a typo is not taken for "no
// comment". Problems are sentences for the caller, as the form's are, and
// never quote more than a key of the body.
func parseCallback(body []byte) (decisionInput, outcome, string) {
	bad := func(format string, args ...any) (decisionInput, outcome, string) {
		return decisionInput{}, outBodyInvalid, fmt.Sprintf(format, args...)
	}
	if !utf8.Valid(body) {
		// encoding/json would quietly turn the bad bytes into U+FFFD.
		return bad("The body is not valid UTF-8.")
	}
	if problem := checkJSON(body, 1+MaxPayloadDepth); problem != "" {
		return bad("%s", problem)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return bad(`The body must be a JSON object {"comment": "...", "payload": {...}}.`)
	}
	for k := range raw {
		if !slices.Contains(callbackFields, k) {
			return bad("Unknown field %q: a callback has comment and payload.", truncateRunes(k, 40))
		}
	}
	var in decisionInput
	if c, ok := raw["comment"]; ok && !isNull(c) {
		if err := json.Unmarshal(c, &in.comment); err != nil {
			return bad("The comment must be a string.")
		}
		in.comment = strings.TrimSpace(strings.ReplaceAll(in.comment, "\r\n", "\n"))
		if utf8.RuneCountInString(in.comment) > MaxCommentRunes {
			return decisionInput{comment: in.comment}, outCommentInvalid,
				fmt.Sprintf("The comment is too long: at most %d characters, please shorten it.", MaxCommentRunes)
		}
	}
	if p, ok := raw["payload"]; ok && !isNull(p) {
		var buf bytes.Buffer
		if p = bytes.TrimSpace(p); p[0] != '{' || json.Compact(&buf, p) != nil {
			return bad("The payload must be a JSON object.")
		}
		if buf.Len() > MaxPayloadBytes {
			return bad("The payload is larger than %d bytes.", MaxPayloadBytes)
		}
		in.payload = buf.Bytes()
	}
	return in, outcome{}, ""
}

// checkJSON checks that body is one JSON value nested at most maxDepth
// deep, with no key given twice in any object (a state machine reading the
// payload would see only one of them), and says what is wrong if not.
func checkJSON(body []byte, maxDepth int) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]bool
		key    bool // the next string token is a key
	}
	const notJSON = "The body is not valid JSON."
	var stack []frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return notJSON
		}
		top := len(stack) - 1
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if top >= 0 && stack[top].object {
					stack[top].key = true
				}
				if len(stack) == maxDepth {
					return fmt.Sprintf("The payload is nested deeper than %d levels.", MaxPayloadDepth)
				}
				stack = append(stack, frame{object: t == '{', keys: map[string]bool{}, key: t == '{'})
			default:
				stack = stack[:top]
			}
			if len(stack) == 0 {
				return atEOF(dec, notJSON)
			}
			continue
		case string:
			if top >= 0 && stack[top].object && stack[top].key {
				if stack[top].keys[t] {
					return fmt.Sprintf("The key %q is given twice in one object.", truncateRunes(t, 40))
				}
				stack[top].keys[t] = true
				stack[top].key = false
				continue
			}
		}
		if top < 0 {
			return atEOF(dec, notJSON) // a lone scalar
		}
		if stack[top].object {
			stack[top].key = true
		}
	}
}

// atEOF returns "" when nothing but space follows the value dec has read,
// and problem otherwise.
func atEOF(dec *json.Decoder, problem string) string {
	if _, err := dec.Token(); err != io.EOF {
		return problem
	}
	return ""
}

func isNull(b json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(b), []byte("null")) }

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
