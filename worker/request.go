package worker

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/channel"
	"github.com/sfn-approvals/sfn-approvals/validate"
	"github.com/sfn-approvals/sfn-approvals/votes"
)

// Limits of the request contract. Outputs, causes and labels travel inside
// every link, so they are kept short enough for links to stay usable.
const (
	MaxRecipients = 50
	// MaxChannels bounds the posts one message makes: each is an HTTP
	// call inside the message's visibility timeout.
	MaxChannels     = 10
	MaxActions      = 10
	MaxSubjectLen   = 998 // one RFC 5322 header line
	MaxLabelLen     = 64
	MaxErrorLen     = 256 // the Step Functions limit for an error name
	MaxCauseLen     = 1024
	MaxOutputLen    = 1024
	MaxRedirectLen  = 2048
	MaxTaskTokenLen = 2048 // the Step Functions limit
	// MaxBodyBytes is Step Functions' own limit on what a state can pass
	// (256 KiB): nothing larger comes from a state machine.
	MaxBodyBytes = 256 << 10
	// MaxDataDepth bounds the nesting of "data": templates walk it, and
	// an email is no place for deeper structure.
	MaxDataDepth  = 32
	MaxExpiry     = 365 * 24 * time.Hour
	DefaultExpiry = 72 * time.Hour

	// DefaultApprovalTemplate and DefaultNotificationTemplate are used when a
	// request names none: with a task token and without.
	DefaultApprovalTemplate     = "approval"
	DefaultNotificationTemplate = "notification"
)

var (
	actionNameRE   = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)
	templateNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// Request is a decoded, valid approval request or notification.
type Request struct {
	TaskToken string // empty for a notification
	To        []mail.Address
	Cc        []mail.Address
	// Channels are the configured channels the message is posted to, in
	// the request's order.
	Channels    []channel.Channel
	ReplyTo     []mail.Address
	Subject     string
	Template    string
	Data        map[string]any // numbers are json.Number, as written
	Actions     []approval.Action
	ExpiresAt   time.Time // whole seconds; zero for a notification that gives none
	RedirectURL string
	// MinApprovals is how many distinct approvers must choose a success
	// action (default 1; 0 for a notification).
	MinApprovals int
	// RequestedBy is the requester, who gets no links and can never
	// decide; already dropped from To and Cc. Nil when the request names
	// none.
	RequestedBy *mail.Address
}

// Notification reports whether r only sends an email: it has no task token
// to complete, so no actions and no links.
func (r *Request) Notification() bool { return r.TaskToken == "" }

// Recipients lists To then Cc: each gets an email of their own.
func (r *Request) Recipients() []mail.Address {
	return append(slices.Clip(r.To), r.Cc...)
}

// String describes the request without its task token, so a request that
// reaches a log by mistake does not leak it.
func (r Request) String() string {
	return fmt.Sprintf("Request{notification=%t template=%q recipients=%d channels=%d actions=%d expiresAt=%s}",
		r.Notification(), r.Template, len(r.To)+len(r.Cc), len(r.Channels), len(r.Actions), r.ExpiresAt.Format(time.RFC3339))
}

// DecodeOptions tune DecodeRequest. The zero value means now = time.Now(),
// a default expiry of 72h, and the embedded templates.
type DecodeOptions struct {
	Now time.Time
	// Sent is when the request was sent (the message's SentTimestamp):
	// expiresIn and the default expiry count from it, so that every
	// receive of a message mints the same expiry. Zero means Now.
	Sent          time.Time
	DefaultExpiry time.Duration
	// Templates is the set a request's "template" must name; nil means the
	// embedded templates.
	Templates *Templates
	// Channels is the configured set (APPROVALS_CHANNELS) a request's
	// "channels" must name; the zero value has none.
	Channels channel.Config
	// VotesTable says a votes table is configured (APPROVALS_VOTES_TABLE):
	// without one, a request may not ask for more than one approval.
	VotesTable bool
}

// ValidationError lists every problem found in a request body.
type ValidationError struct {
	Problems []string
	// taskToken is the request's token, if it had a usable one: the
	// execution to fail. Unexported so that it never reaches a log or a
	// JSON encoding of the error.
	taskToken string
}

func (e *ValidationError) Error() string {
	return "invalid request: " + strings.Join(e.Problems, "; ")
}

// Malformed reports whether the body had no task token to fail: the message
// can only be left for the dead-letter queue.
func (e *ValidationError) Malformed() bool { return e.taskToken == "" }

// requestFieldNames are the keys a request may have, in the order problems
// are reported.
var requestFieldNames = [...]string{"taskToken", "to", "cc", "channels", "replyTo", "subject", "template", "data", "actions", "expiresIn", "expiresAt", "redirectUrl", "minApprovals", "requestedBy"}

var requestFields = requestFieldNames[:]

// requestFieldIndex is key's index in requestFieldNames, or -1.
func requestFieldIndex(key string) int {
	for i, f := range requestFieldNames {
		if f == key {
			return i
		}
	}
	return -1
}

// DecodeRequest decodes and validates an SQS message body against the
// request contract. Keys match exactly (JSON's usual case-insensitive match
// would let typos through) and unknown keys are problems. On failure it
// returns a *ValidationError that lists every problem, never the token.
func DecodeRequest(body []byte, opts DecodeOptions) (*Request, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	sent := opts.Sent
	if sent.IsZero() {
		sent = now
	}
	defExpiry := opts.DefaultExpiry
	if defExpiry == 0 {
		defExpiry = DefaultExpiry
	}
	tmpls := opts.Templates
	if tmpls == nil {
		var err error
		if tmpls, err = embeddedTemplates(); err != nil {
			return nil, fmt.Errorf("load embedded templates: %w", err)
		}
	}

	// One pass over the body checks it, finds the top-level values and
	// the duplicate keys at every level; the fields are decoded from the
	// values it found.
	d := decoder{body: body}
	if !d.sc.scan(body) || !d.sc.object {
		// encoding/json's words for what is wrong with it.
		var raw map[string]json.RawMessage
		err := json.Unmarshal(body, &raw)
		reason := "body is not a JSON object"
		var se *json.SyntaxError
		if errors.As(err, &se) {
			reason += fmt.Sprintf(" (syntax error at byte %d)", se.Offset)
		}
		return nil, &ValidationError{Problems: []string{reason}}
	}

	// The size and encoding are checked after the token is found, so that
	// even such a request fails its execution fast.
	if len(body) > MaxBodyBytes {
		d.problemf("body: %d bytes, at most %d", len(body), MaxBodyBytes)
	}
	d.utf8 = d.sc.ascii || utf8.Valid(body)
	if !d.utf8 {
		// encoding/json would quietly turn the bad bytes into U+FFFD.
		d.problemf("body: not valid UTF-8")
	}
	unknown := d.sc.unknown
	sort.Strings(unknown)
	for _, k := range unknown {
		d.problemf("unknown field %s", quote(k))
	}
	d.problems = append(d.problems, d.sc.dups...)

	r := &Request{}
	hasToken := d.taskToken(r)
	nChannels := d.channels(r, opts.Channels)
	d.recipients(r, nChannels)
	d.subject(r)
	d.template(r, hasToken, tmpls)
	d.data(r)
	d.actions(r, hasToken)
	d.expiry(r, hasToken, now, sent, defExpiry)
	d.redirect(r)
	d.policy(r, hasToken, opts.VotesTable)

	if len(d.problems) > 0 {
		return nil, &ValidationError{Problems: d.problems, taskToken: r.TaskToken}
	}
	return r, nil
}

type decoder struct {
	body     []byte
	sc       scanned
	utf8     bool // the body is valid UTF-8
	problems []string
}

// raw returns key's value as written, if the body has key.
func (d *decoder) raw(key string) (string, bool) {
	v := d.sc.values[requestFieldIndex(key)]
	return d.sc.str[v.start:v.end], v.set
}

// rawBytes is raw for encoding/json.
func (d *decoder) rawBytes(key string) []byte {
	v := d.sc.values[requestFieldIndex(key)]
	return d.body[v.start:v.end:v.end]
}

func (d *decoder) problemf(format string, args ...any) {
	d.problems = append(d.problems, fmt.Sprintf(format, args...))
}

// field decodes key into v if present and not null, and reports whether it
// was. A value of the wrong JSON type is a problem.
func (d *decoder) field(key string, v any, want string) bool {
	if !d.present(key) {
		return false
	}
	if err := json.Unmarshal(d.rawBytes(key), v); err != nil {
		d.problemf("%s: must be %s", key, want)
		return false
	}
	return true
}

// stringField is field for a string.
func (d *decoder) stringField(key string, want string) (string, bool) {
	if !d.present(key) {
		return "", false
	}
	v, _ := d.raw(key)
	if s, ok := d.plainString(v); ok {
		return s, true
	}
	s, err := unmarshalString(d.rawBytes(key))
	if err != nil {
		d.problemf("%s: must be %s", key, want)
		return "", false
	}
	return s, true
}

func unmarshalString(b []byte) (string, error) {
	var s string
	err := json.Unmarshal(b, &s)
	return s, err
}

// stringsField is field for a list of strings.
func (d *decoder) stringsField(key string, want string) ([]string, bool) {
	if !d.present(key) {
		return nil, false
	}
	v, _ := d.raw(key)
	if list, ok := d.plainStrings(v); ok {
		return list, true
	}
	var list []string
	if err := json.Unmarshal(d.rawBytes(key), &list); err != nil {
		d.problemf("%s: must be %s", key, want)
		return nil, false
	}
	return list, true
}

// plainString returns the JSON string v holds when it has no escapes and
// is valid UTF-8, which is what json.Unmarshal would make of it, cut from
// the body rather than copied: a task token is a kilobyte or two of it.
// v is valid JSON.
func (d *decoder) plainString(v string) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	inner := v[1 : len(v)-1]
	if strings.IndexByte(inner, '\\') >= 0 || !d.utf8 && !utf8.ValidString(inner) {
		return "", false
	}
	return inner, true
}

// plainStrings returns the JSON array of strings v holds when each is a
// plainString, or false. v is valid JSON.
func (d *decoder) plainStrings(v string) ([]string, bool) {
	if len(v) < 2 || v[0] != '[' {
		return nil, false
	}
	n := 0
	for i := 1; i < len(v); i++ {
		if v[i] == ',' || v[i] == '"' {
			n++
		}
	}
	list := make([]string, 0, n/3+1)
	i := skipSpace(v, 1)
	if v[i] == ']' {
		return list, true
	}
	for {
		if v[i] != '"' {
			return nil, false
		}
		end, _, _ := stringEnd(v, i)
		s, ok := d.plainString(v[i:end])
		if !ok {
			return nil, false
		}
		list = append(list, s)
		i = skipSpace(v, end)
		if v[i] == ']' {
			return list, true
		}
		i = skipSpace(v, i+1) // the comma
	}
}

func (d *decoder) taskToken(r *Request) bool {
	raw, ok := d.raw("taskToken")
	if !ok {
		return false
	}
	if slices.Contains(d.sc.topDups, "taskToken") {
		// Two tokens: which execution the request is for is anyone's
		// guess, so none is failed (the problem is already listed).
		return false
	}
	tok, ok := d.stringField("taskToken", "a string")
	if !ok {
		if raw == "null" {
			d.problemf("taskToken: must not be null (leave it out for a notification)")
		}
		return false
	}
	switch {
	case tok == "":
		d.problemf("taskToken: must not be empty (leave it out for a notification)")
		return false
	case len(tok) > MaxTaskTokenLen:
		d.problemf("taskToken: longer than %d characters", MaxTaskTokenLen)
	}
	r.TaskToken = tok
	return true
}

// addresses decodes key as a list of addresses, reporting each bad one, and
// returns the good ones and how many the list held (-1: absent or not a list).
func (d *decoder) addresses(key string) ([]mail.Address, int) {
	list, ok := d.stringsField(key, "an array of email addresses")
	if !ok {
		return nil, -1
	}
	out := make([]mail.Address, 0, len(list))
	for i, s := range list {
		a, err := validate.Address(s)
		switch {
		case errors.Is(err, validate.ErrLineBreak):
			d.problemf("%s[%d]: line break in address", key, i)
		case err != nil:
			d.problemf("%s[%d]: %s %v", key, i, quote(s), err)
		default:
			out = append(out, a)
		}
	}
	return out, len(list)
}

// recipients checks the addresses; nChannels is how many channels the
// request names (-1: none given or not a list), since a request posted to a
// channel needs no "to".
func (d *decoder) recipients(r *Request, nChannels int) {
	var nTo, nCc, nReply int
	r.To, nTo = d.addresses("to")
	r.Cc, nCc = d.addresses("cc")
	r.ReplyTo, nReply = d.addresses("replyTo")
	// A "to" or "channels" of the wrong type was reported by field already.
	toGiven := nTo > 0 || (nTo < 0 && d.present("to"))
	channelsGiven := nChannels > 0 || (nChannels < 0 && d.present("channels"))
	if !toGiven && !channelsGiven {
		d.problemf("to, channels: at least one address or channel is required")
	}
	if n := max(nTo, 0) + max(nCc, 0); n > MaxRecipients {
		d.problemf("to, cc: %d recipients, at most %d", n, MaxRecipients)
	}
	seen := map[string]bool{}
	for _, a := range r.Recipients() {
		k := strings.ToLower(a.Address)
		if seen[k] {
			d.problemf("to, cc: %s appears more than once (each recipient gets one email)", quote(a.Address))
		}
		seen[k] = true
	}
	if nReply > MaxRecipients {
		d.problemf("replyTo: %d addresses, at most %d", nReply, MaxRecipients)
	}
}

// channels resolves "channels" against the configured set and returns how
// many names it held (-1: absent or not a list). Every unknown name is
// reported, with the names that would do, which are not secrets.
func (d *decoder) channels(r *Request, cfg channel.Config) int {
	names, ok := d.stringsField("channels", "an array of channel names")
	if !ok {
		return -1
	}
	if len(names) > MaxChannels {
		d.problemf("channels: %d channels, at most %d", len(names), MaxChannels)
	}
	seen := map[string]bool{}
	for i, n := range names {
		ch, ok := cfg.Lookup(n)
		switch {
		case !ok && cfg.Len() == 0:
			d.problemf("channels[%d]: no channel named %s (this worker has no channels configured)", i, quote(n))
		case !ok:
			d.problemf("channels[%d]: no channel named %s (have %s)", i, quote(n), strings.Join(cfg.Names(), ", "))
		case seen[n]:
			d.problemf("channels[%d]: %s appears more than once (each channel gets one message)", i, quote(n))
		default:
			r.Channels = append(r.Channels, ch)
		}
		seen[n] = true
	}
	return len(names)
}

// present reports whether key is in the body with a value other than null.
func (d *decoder) present(key string) bool {
	v, ok := d.raw(key)
	return ok && v != "null"
}

func (d *decoder) subject(r *Request) {
	if !d.present("subject") {
		d.problemf("subject: required")
		return
	}
	var ok bool
	if r.Subject, ok = d.stringField("subject", "a string"); !ok {
		return
	}
	switch {
	case strings.TrimSpace(r.Subject) == "":
		d.problemf("subject: must not be empty")
	case strings.ContainsAny(r.Subject, "\r\n"):
		d.problemf("subject: line break in subject")
	case utf8.RuneCountInString(r.Subject) > MaxSubjectLen:
		d.problemf("subject: longer than %d characters", MaxSubjectLen)
	}
}

func (d *decoder) template(r *Request, hasToken bool, t *Templates) {
	var ok bool
	if r.Template, ok = d.stringField("template", "a string"); ok {
		if !templateNameRE.MatchString(r.Template) {
			d.problemf("template: %s is not a template name (letters, digits, '-', '_')", quote(r.Template))
			return
		}
		if !t.Has(r.Template) {
			d.problemf("template: no template named %s (have %s)", quote(r.Template), strings.Join(t.Names(), ", "))
		}
		return
	}
	if hasToken {
		r.Template = DefaultApprovalTemplate
	} else {
		r.Template = DefaultNotificationTemplate
	}
}

func (d *decoder) data(r *Request) {
	if !d.present("data") {
		r.Data = map[string]any{}
		return
	}
	if d.sc.values[requestFieldIndex("data")].depth > MaxDataDepth {
		r.Data = map[string]any{}
		d.problemf("data: nested deeper than %d levels", MaxDataDepth)
		return
	}
	v, _ := d.raw("data")
	if v[0] != '{' {
		r.Data = map[string]any{}
		d.problemf("data: must be a JSON object")
		return
	}
	// Numbers are json.Number, to show them as written, big ones exactly.
	r.Data, _ = d.object(v, 0, d.sc.dataKeys)
}

// object decodes the object at v[i] as value does, into a map made for
// size keys.
func (d *decoder) object(v string, i int, size int) (map[string]any, int) {
	m := make(map[string]any, size)
	i = skipSpace(v, i+1)
	for v[i] != '}' {
		end, high, _ := stringEnd(v, i)
		k := decodeKey(v[i:end], high)
		i = skipSpace(v, skipSpace(v, end)+1) // the colon
		// The last of a duplicated key stays, as with encoding/json.
		m[k], i = d.value(v, i)
		if i = skipSpace(v, i); v[i] == ',' {
			i = skipSpace(v, i+1)
		}
	}
	return m, i + 1
}

// value decodes the JSON value at v[i] (valid JSON, nested no deeper than
// MaxDataDepth) as encoding/json decodes into an any with UseNumber, and
// returns where it ends.
func (d *decoder) value(v string, i int) (any, int) {
	switch c := v[i]; c {
	case '{':
		return d.object(v, i, 0)
	case '[':
		list := []any{}
		i = skipSpace(v, i+1)
		for v[i] != ']' {
			var x any
			x, i = d.value(v, i)
			list = append(list, x)
			if i = skipSpace(v, i); v[i] == ',' {
				i = skipSpace(v, i+1)
			}
		}
		return list, i + 1
	case '"':
		end, _, _ := stringEnd(v, i)
		if s, ok := d.plainString(v[i:end]); ok {
			return s, end
		}
		s, _ := unmarshalString([]byte(v[i:end]))
		return s, end
	case 't':
		return true, i + 4
	case 'f':
		return false, i + 5
	case 'n':
		return nil, i + 4
	}
	end, _ := numberEnd(v, i)
	return json.Number(v[i:end]), end
}

func (d *decoder) actions(r *Request, hasToken bool) {
	if !d.present("actions") {
		if hasToken {
			r.Actions = approval.DefaultActions()
		}
		return
	}
	if !hasToken {
		d.problemf("actions: a notification (no taskToken) has no actions")
		return
	}
	v, _ := d.raw("actions")
	if v[0] != '[' {
		d.problemf("actions: must be an array of actions")
		return
	}
	list := elements(v)
	switch {
	case len(list) == 0:
		d.problemf("actions: at least one action is required (leave the field out for approve and reject)")
	case len(list) > MaxActions:
		d.problemf("actions: %d actions, at most %d", len(list), MaxActions)
	}
	r.Actions = make([]approval.Action, 0, len(list))
	seen := map[string]bool{}
	for i, b := range list {
		a, output, ok := d.plainAction(b)
		if !ok {
			var problem string
			if a, output, problem = decodeAction(b); problem != "" {
				d.problemf("actions[%d]: %s", i, problem)
				continue
			}
		}
		// The action's place in problems, made only for one.
		var at string
		where := func() string {
			if at == "" {
				at = "actions[" + strconv.Itoa(i) + "]"
				if a.Name != "" {
					at += " (" + quote(a.Name) + ")"
				}
			}
			return at
		}
		if !actionNameRE.MatchString(a.Name) {
			d.problemf("%s: name must be 1 to 32 of a-z, 0-9, '-', '_'", where())
		} else if seen[a.Name] {
			d.problemf("%s: name used by another action", where())
		}
		seen[a.Name] = true
		if !a.Type.Valid() {
			d.problemf("%s: type must be success, failure or heartbeat", where())
		}
		if strings.ContainsAny(a.Label, "\r\n") || utf8.RuneCountInString(a.Label) > MaxLabelLen {
			d.problemf("%s: label must be one line of at most %d characters", where(), MaxLabelLen)
		}
		if output == "null" {
			a.Output, output = nil, ""
		}
		if a.Output == nil && output != "" && a.Type != approval.Success {
			// Only a success keeps its output (compacted below): here
			// it is for the problems.
			a.Output = json.RawMessage(output)
		}
		switch a.Type {
		case approval.Success:
			if a.Error != "" || a.Cause != "" {
				d.problemf("%s: a success action has no error or cause", where())
			}
			a.Output = d.output(where, output)
		case approval.Heartbeat:
			if a.Error != "" || a.Cause != "" || a.Output != nil {
				d.problemf("%s: a heartbeat action has no output, error or cause", where())
			}
		case approval.Failure:
			if a.Output != nil {
				d.problemf("%s: a failure action has no output (use error and cause)", where())
			}
			switch {
			case a.Error == "":
				d.problemf("%s: a failure action needs an error name", where())
			case utf8.RuneCountInString(a.Error) > MaxErrorLen:
				d.problemf("%s: error longer than %d characters", where(), MaxErrorLen)
			}
			if utf8.RuneCountInString(a.Cause) > MaxCauseLen {
				d.problemf("%s: cause longer than %d characters", where(), MaxCauseLen)
			}
		}
		r.Actions = append(r.Actions, a)
	}
}

// actionFields are the keys an action may have: approval.Action's JSON
// names, so that a field added there is accepted here.
var actionFields = func() []string {
	var names []string
	t := reflect.TypeFor[approval.Action]()
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}()

// firstUnknown returns the first key of m, in sorted order, that is not in
// known, or "".
func firstUnknown(m map[string]json.RawMessage, known []string) string {
	var unknown []string
	for k := range m {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return ""
	}
	return slices.Min(unknown)
}

// output checks a success action's output and returns it compacted, since
// it travels inside every link.
// out is the output as written (valid JSON), "" for none.
func (d *decoder) output(where func() string, out string) json.RawMessage {
	if out == "" {
		return nil
	}
	if out[0] != '{' {
		d.problemf("%s: output must be a JSON object", where())
		return nil
	}
	var decision, decisions bool
	for i := skipSpace(out, 1); out[i] != '}'; {
		end, high, _ := stringEnd(out, i)
		switch decodeKey(out[i:end], high) {
		case approval.DecisionKey:
			decision = true
		case votes.DecisionsKey:
			decisions = true
		}
		i = skipValue(out, skipSpace(out, skipSpace(out, end)+1))
		if i = skipSpace(out, i); out[i] == ',' {
			i = skipSpace(out, i+1)
		}
	}
	if decision {
		d.problemf("%s: output may not use the key %q (the decision goes there)", where(), approval.DecisionKey)
	}
	if decisions {
		d.problemf("%s: output may not use the key %q (the approving votes go there)", where(), votes.DecisionsKey)
	}
	// What json.Compact makes of it: the space between tokens dropped.
	c := make([]byte, 0, len(out))
	for i := 0; i < len(out); i++ {
		switch ch := out[i]; ch {
		case ' ', '\t', '\n', '\r':
		case '"':
			end, _, _ := stringEnd(out, i)
			c = append(c, out[i:end]...)
			i = end - 1
		default:
			c = append(c, ch)
		}
	}
	if len(c) > MaxOutputLen {
		d.problemf("%s: output longer than %d bytes", where(), MaxOutputLen)
	}
	return c
}

// decodeAction decodes the action b (valid JSON) with encoding/json, and
// returns its output as written, or a problem.
func decodeAction(b string) (a approval.Action, output string, problem string) {
	// encoding/json matches struct fields case-insensitively ("Type"
	// would fill type); keys match exactly, as at the top level.
	var keys map[string]json.RawMessage
	if err := json.Unmarshal([]byte(b), &keys); err == nil {
		if k := firstUnknown(keys, actionFields); k != "" {
			return a, "", "unknown field " + quote(k)
		}
	}
	dec := json.NewDecoder(strings.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return a, "", strings.TrimPrefix(jsonProblem(err), "json: ")
	}
	return a, string(a.Output), ""
}

// plainAction decodes the action b (valid JSON) as encoding/json would
// into an approval.Action, but its output, which it returns as written,
// when b is an
// object of the action's keys whose text fields are plain strings;
// anything else is left to encoding/json.
func (d *decoder) plainAction(b string) (a approval.Action, output string, ok bool) {
	if b[0] != '{' {
		return a, "", false
	}
	for i := skipSpace(b, 1); b[i] != '}'; {
		end, high, _ := stringEnd(b, i)
		k := decodeKey(b[i:end], high)
		i = skipSpace(b, skipSpace(b, end)+1)
		vend := skipValue(b, i)
		v := b[i:vend]
		if k == "output" {
			output = v
		} else {
			s, ok := d.plainString(v)
			if !ok {
				return a, "", false
			}
			switch k {
			case "name":
				a.Name = s
			case "label":
				a.Label = s
			case "type":
				a.Type = approval.ActionType(s)
			case "error":
				a.Error = s
			case "cause":
				a.Cause = s
			default:
				return a, "", false
			}
		}
		if i = skipSpace(b, vend); b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return a, output, true
}

// elements lists the values of the JSON array v (valid JSON) as written.
func elements(v string) []string {
	var list []string
	for i := skipSpace(v, 1); v[i] != ']'; {
		end := skipValue(v, i)
		list = append(list, v[i:end])
		if i = skipSpace(v, end); v[i] == ',' {
			i = skipSpace(v, i+1)
		}
	}
	return list
}

// skipValue returns where the JSON value at s[i] (valid JSON) ends.
func skipValue(s string, i int) int {
	switch s[i] {
	case '"':
		end, _, _ := stringEnd(s, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(s); j++ {
			switch s[j] {
			case '"':
				end, _, _ := stringEnd(s, j)
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(s)
	case 't', 'n':
		return i + 4
	case 'f':
		return i + 5
	}
	end, _ := numberEnd(s, i)
	return end
}

func (d *decoder) expiry(r *Request, hasToken bool, now, sent time.Time, def time.Duration) {
	in, gotIn := d.stringField("expiresIn", "a duration string like \"72h\"")
	at, gotAt := d.stringField("expiresAt", "an RFC 3339 time string")
	limit := now.Add(MaxExpiry)
	var exp time.Time
	switch {
	case gotIn && gotAt:
		d.problemf("expiresIn, expiresAt: give one, not both")
		return
	case gotIn:
		dur, err := time.ParseDuration(in)
		if err != nil {
			d.problemf("expiresIn: %s is not a duration (like \"72h\" or \"30m\")", quote(in))
			return
		}
		if dur > MaxExpiry {
			d.problemf("expiresIn: %s is more than one year", quote(in))
			return
		}
		exp = sent.Add(dur)
	case gotAt:
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			d.problemf("expiresAt: %s is not an RFC 3339 time", quote(at))
			return
		}
		if t.After(limit) {
			d.problemf("expiresAt: %s is more than one year away", quote(at))
			return
		}
		exp = t
	default:
		if !hasToken {
			return // a notification has no links to expire
		}
		exp = sent.Add(def)
	}
	// Links carry whole seconds; truncating first keeps "in the future" true
	// of what the link says.
	exp = exp.Truncate(time.Second).UTC()
	if !exp.After(now) {
		d.problemf("expiry: must be in the future")
		return
	}
	r.ExpiresAt = exp
}

func (d *decoder) redirect(r *Request) {
	var ok bool
	if r.RedirectURL, ok = d.stringField("redirectUrl", "a string"); !ok {
		return
	}
	if len(r.RedirectURL) > MaxRedirectLen {
		d.problemf("redirectUrl: longer than %d characters", MaxRedirectLen)
		return
	}
	// The redeemer applies the same check before it redirects: a URL
	// accepted here is one it follows.
	if _, err := validate.URL(r.RedirectURL); err != nil {
		d.problemf("redirectUrl: %s %v", quote(r.RedirectURL), err)
	}
}

// policy reads minApprovals and requestedBy, drops the requester from the
// approvers, and checks that enough approvers are left.
func (d *decoder) policy(r *Request, hasToken bool, votesTable bool) {
	if !hasToken {
		for _, k := range []string{"minApprovals", "requestedBy"} {
			if d.present(k) {
				d.problemf("%s: a notification (no taskToken) has no approvers", k)
			}
		}
		return
	}
	if by, ok := d.stringField("requestedBy", "an email address (a string)"); ok {
		a, err := validate.Address(by)
		switch {
		case errors.Is(err, validate.ErrLineBreak):
			d.problemf("requestedBy: line break in address")
		case err != nil:
			d.problemf("requestedBy: %s %v", quote(by), err)
		default:
			r.RequestedBy = &a
			// The requester may be among the recipients (a team list
			// copied into the request): they get no email with links.
			drop := func(list []mail.Address) []mail.Address {
				return slices.DeleteFunc(list, func(x mail.Address) bool { return strings.EqualFold(x.Address, a.Address) })
			}
			r.To, r.Cc = drop(r.To), drop(r.Cc)
		}
	}
	r.MinApprovals = 1
	if d.present("minApprovals") {
		n, ok := d.minApprovals()
		if !ok {
			return
		}
		r.MinApprovals = n
	}
	// A channel is one approver (one vote per channel with link identity).
	eligible := len(r.To) + len(r.Cc) + len(r.Channels)
	switch {
	case eligible == 0 && r.RequestedBy != nil && d.present("to"):
		d.problemf("to, cc: no approver left once requestedBy %s is left out (the requester cannot decide)", quote(r.RequestedBy.Address))
	case eligible > 0 && r.MinApprovals > eligible:
		d.problemf("minApprovals: %d, but only %d eligible approvers (to, cc and channels, without requestedBy)", r.MinApprovals, eligible)
	}
	if r.MinApprovals > 1 && !votesTable {
		d.problemf("minApprovals: %d needs the votes table, and this service has none (APPROVALS_VOTES_TABLE)", r.MinApprovals)
	}
}

// minApprovals reads the field as a whole number from 1 to MaxRecipients.
func (d *decoder) minApprovals() (int, bool) {
	// What encoding/json with UseNumber makes of a number is the number
	// as written; the body is valid JSON already.
	v, _ := d.raw("minApprovals")
	num, isNumber := "", v[0] == '-' || '0' <= v[0] && v[0] <= '9'
	if isNumber {
		num = v
	}
	n, err := strconv.ParseInt(num, 10, 32)
	switch {
	case !isNumber || err != nil:
		d.problemf("minApprovals: must be a whole number")
		return 0, false
	case n < 1:
		d.problemf("minApprovals: must be at least 1")
		return 0, false
	case n > MaxRecipients:
		d.problemf("minApprovals: %d, at most %d (the most recipients a request has)", n, MaxRecipients)
		return 0, false
	}
	return int(n), true
}

// jsonProblem turns a decoding error into words that do not echo the input.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("%s: must be %s", te.Field, jsonKind(te.Type.Kind().String()))
		}
		return "must be a JSON object"
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "not valid JSON"
	}
	return err.Error()
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return k
}

// quote quotes a value from the request for a problem message, cut short so
// that a hostile request cannot make the cause or a log line huge.
func quote(s string) string {
	const max = 80
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	return fmt.Sprintf("%q", s)
}
