package redeemer

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/link"
)

// outcome is one kind of answer: its name (in JSON, CSS and logs), status
// code and words.
type outcome struct {
	Name    string
	Status  int
	Title   string
	Message string
	Hint    string
	// RetryAfter, when set, is sent as Retry-After (whole seconds).
	RetryAfter time.Duration
}

var (
	outConfirm = outcome{Name: "confirm", Status: http.StatusOK, Title: "Confirm your decision",
		Message: "Press the button to record this decision."}
	outRecorded = outcome{Name: "recorded", Status: http.StatusOK, Title: "Decision recorded",
		Message: "Your decision has been recorded. You can close this page."}
	outExtended = outcome{Name: "extended", Status: http.StatusOK, Title: "Request extended",
		Message: "The request has been extended and stays open for a decision. You can close this page."}
	outCommentInvalid = outcome{Name: "comment_invalid", Status: http.StatusBadRequest, Title: "Check your comment",
		Message: "Nothing was recorded: the comment needs a change."}
	outGone = outcome{Name: "gone", Status: http.StatusGone, Title: "Already answered",
		Message: "This request has already been answered, or it timed out. Nothing was changed."}
	outExpired = outcome{Name: "expired", Status: http.StatusGone, Title: "Link expired",
		Message: "This link has expired. Nothing was changed.",
		Hint:    "If a decision is still needed, ask the requester for a new link."}
	outInvalid = outcome{Name: "invalid", Status: http.StatusBadRequest, Title: "Link not valid",
		Message: "This link could not be verified. Nothing was changed.",
		Hint:    "Some mail programs break long links: open it from the email again, or copy the whole link into the address bar."}
	outUnavailable = outcome{Name: "unavailable", Status: http.StatusServiceUnavailable, Title: "Try again shortly",
		Message: "Step Functions could not be reached, so nothing was recorded yet.",
		Hint:    "This link still works: try again in a minute.", RetryAfter: time.Minute}
	outError = outcome{Name: "error", Status: http.StatusInternalServerError, Title: "Not recorded",
		Message: "The decision could not be recorded.",
		Hint:    "If this keeps happening, tell the requester."}
	outRateLimited = outcome{Name: "rate_limited", Status: http.StatusTooManyRequests, Title: "Too many requests",
		Message: "Too many requests came from your network in a short time. Nothing was changed.",
		Hint:    "Your link still works: wait a minute and open it again."}
	outSignInRequired = outcome{Name: "sign_in_required", Status: http.StatusUnauthorized, Title: "Sign in again",
		Message: "Your sign-in could not be verified, so nothing was changed.",
		Hint:    "Open the link from the email again: you will be asked to sign in."}
	outForbidden = outcome{Name: "forbidden", Status: http.StatusForbidden, Title: "Not your link",
		Message: "This link is for someone else. Nothing was changed.",
		Hint:    "Sign in as the person the link was sent to, or ask the requester for a link of your own."}
	// outSignInUnavailable is outUnavailable for the sign-in's key server.
	outSignInUnavailable = outcome{Name: "unavailable", Status: http.StatusServiceUnavailable, Title: "Try again shortly",
		Message: "Your sign-in could not be checked just now, so nothing was recorded yet.",
		Hint:    "This link still works: try again in a minute.", RetryAfter: time.Minute}
	outNotFound = outcome{Name: "not_found", Status: http.StatusNotFound, Title: "Page not found",
		Message: "There is nothing here."}
	outMethodNotAllowed = outcome{Name: "method_not_allowed", Status: http.StatusMethodNotAllowed, Title: "Method not allowed",
		Message: "Open the link in a browser and use the button on the page."}
)

// view is what one response shows.
type view struct {
	outcome
	claims     *link.Claims       // nil when the link could not be trusted
	signedIn   *approval.Identity // nil without a verified sign-in
	decidedAt  time.Time
	comment    string
	commentErr string
	formAction string
	// formActionPlain: formAction needs no escaping (see formAction).
	formActionPlain bool
	redirect        string // where a recorded decision sends the approver
	// The votes table's view of the request: tallied says approvals and
	// required are known; decided is the request's decision (gone), earlier
	// this approver's own vote (already_voted).
	tallied             bool
	approvals, required int
	decided             *approval.Decision
	earlier             *approval.Decision
}

// pageData is what the HTML templates see.
type pageData struct {
	Title, Message, Hint, Outcome, StyleURL string
	Action, Label, Type, Approver           string
	SignedInAs                              string // empty without a verified sign-in
	ExpiresAt, ExpiresAtISO                 string
	DecidedAt, DecidedAtISO                 string
	FormAction, Comment, CommentError       string
	MaxComment                              int
	// Tallied: the request's votes were counted, Approvals of Required.
	Tallied             bool
	Approvals, Required int
	// DecidedBy, DecidedAction and DecidedAt(ISO) name the request's
	// decision on a gone page, when the votes table has it.
	DecidedBy, DecidedAction string
	// EarlierAction is the approver's earlier vote (already_voted).
	EarlierAction string

	// formActionPlain lets writeConfirm copy FormAction as it is.
	formActionPlain bool
}

// jsonBody is the answer to a client that sends Accept: application/json.
type jsonBody struct {
	Outcome     string     `json:"outcome"`
	Status      int        `json:"status"`
	Message     string     `json:"message"`
	Action      string     `json:"action,omitempty"`
	Label       string     `json:"label,omitempty"`
	Type        string     `json:"type,omitempty"`
	Approver    string     `json:"approver,omitempty"`
	SignedInAs  string     `json:"signedInAs,omitempty"`
	ExpiresAt   *time.Time `json:"expiresAt,omitempty"`
	DecidedAt   *time.Time `json:"decidedAt,omitempty"`
	Comment     string     `json:"comment,omitempty"`
	RedirectURL string     `json:"redirectUrl,omitempty"`
	// With the votes table: approvals so far and required (vote_recorded,
	// already_voted, confirm), and who decided (gone).
	Approvals     *int   `json:"approvals,omitempty"`
	Required      *int   `json:"required,omitempty"`
	DecidedBy     string `json:"decidedBy,omitempty"`
	DecidedAction string `json:"decidedAction,omitempty"`
}

// wantsJSON reports whether the client asked for JSON by name, or sent a
// JSON callback. Browsers send text/html and */*, so they get pages.
func wantsJSON(r *http.Request) bool {
	if r.Method == http.MethodPost && isJSONBody(r) {
		return true
	}
	accept := r.Header.Get("Accept")
	if !containsFold(accept, "json") {
		// A browser's Accept names no JSON: skip parsing every part.
		return false
	}
	for _, part := range strings.Split(accept, ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "application/json" {
			return true
		}
	}
	return false
}

// containsFold reports whether s holds substr, ASCII case ignored, as
// media types are compared. Only a window starting with substr's first
// letter, in either case, is compared: those are found with IndexByte,
// where trying every offset of a browser's ~130-byte Accept cost 300 ns
// per request.
func containsFold(s, substr string) bool {
	if substr == "" {
		return true
	}
	c := substr[0]
	if c|0x20 < 'a' || c|0x20 > 'z' || !isASCII(substr) {
		// EqualFold's Unicode folding could match another first byte.
		return containsFoldAt(s, substr, 0)
	}
	for _, first := range [2]byte{c | 0x20, c &^ 0x20} {
		for i := 0; ; {
			j := strings.IndexByte(s[i:], first)
			if j < 0 {
				break
			}
			if i += j; i+len(substr) <= len(s) && strings.EqualFold(s[i:i+len(substr)], substr) {
				return true
			}
			i++
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// containsFoldAt tries every offset of s from i.
func containsFoldAt(s, substr string, i int) bool {
	for ; i+len(substr) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(substr)], substr) {
			return true
		}
	}
	return false
}

const humanTime = "Mon 2 Jan 2006, 15:04 MST"

// respond writes v as JSON or HTML, with its status code.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, v view) {
	if v.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(v.RetryAfter.Seconds())))
	}
	if wantsJSON(r) {
		s.respondJSON(w, v)
		return
	}
	d := pageData{
		Title: v.Title, Message: v.Message, Hint: v.Hint, Outcome: v.Name,
		StyleURL:   s.base + StylePath,
		FormAction: v.formAction, formActionPlain: v.formActionPlain, Comment: v.comment, CommentError: v.commentErr,
		MaxComment: MaxCommentRunes,
	}
	if c := v.claims; c != nil {
		d.Action, d.Label, d.Type = c.Action.Name, c.Action.DisplayLabel(), string(c.Action.Type)
		d.Approver = v.approver()
		d.ExpiresAt = c.ExpiresAt.UTC().Format(humanTime)
		d.ExpiresAtISO = c.ExpiresAt.UTC().Format(time.RFC3339)
	}
	if v.signedIn != nil {
		d.SignedInAs = signedInAs(*v.signedIn)
	}
	if !v.decidedAt.IsZero() {
		d.DecidedAt = v.decidedAt.UTC().Format(humanTime)
		d.DecidedAtISO = v.decidedAt.UTC().Format(time.RFC3339)
	}
	d.Tallied, d.Approvals, d.Required = v.tallied, v.approvals, v.required
	if v.decided != nil && v.Name == outGone.Name {
		d.DecidedBy, d.DecidedAction = v.decided.Approver, v.decided.Action
	}
	if v.earlier != nil {
		d.EarlierAction = v.earlier.Action
	}
	name := "outcome.html.tmpl"
	if v.formAction != "" {
		name = "confirm.html.tmpl"
		if c := v.claims; c != nil {
			if _, origin := redirectTarget(c.RedirectURL); origin != "" {
				w.Header().Set("Content-Security-Policy", csp(origin))
			}
		}
	}
	if s.styleHref != "" {
		page := compiledPages.Get().(*[]byte)
		defer putCompiledPage(page)
		if name == "confirm.html.tmpl" {
			*page = writeConfirm(*page, &d, s.styleHref)
		} else {
			*page = writeOutcome(*page, &d, s.styleHref)
		}
		s.writePage(w, v.Status, *page)
		return
	}
	buf := pageBuffers.Get().(*bytes.Buffer)
	defer putPageBuffer(buf)
	if err := s.pages.ExecuteTemplate(buf, name, d); err != nil {
		// Templates are checked at start-up, so this is an override that
		// fails on some data; the status code still tells the truth.
		s.log.Error("render page", "template", name, "outcome", v.Name, "error", err)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(v.Status)
		_, _ = w.Write([]byte(v.Title + "\n" + v.Message + "\n"))
		return
	}
	s.writePage(w, v.Status, buf.Bytes())
}

// writePage sends a rendered page with its status code.
func (s *Server) writePage(w http.ResponseWriter, status int, page []byte) {
	h := w.Header()
	h[htmlTypeHeader.key] = htmlTypeHeader.value
	h["Content-Length"] = []string{strconv.Itoa(len(page))}
	w.WriteHeader(status)
	_, _ = w.Write(page)
}

// pageBuffers hold rendered pages between requests: a page grew its buffer
// from empty several times per request, a quarter of a GET's CPU time.
var pageBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledPage is the largest buffer kept: pages are a few KB, and one
// odd large page should not pin its memory for good.
const maxPooledPage = 64 << 10

func putPageBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledPage {
		return
	}
	b.Reset()
	pageBuffers.Put(b)
}

func (s *Server) respondJSON(w http.ResponseWriter, v view) {
	msg := v.Message
	if v.commentErr != "" {
		msg = v.commentErr
	}
	if v.Hint != "" {
		msg += " " + v.Hint
	}
	b := jsonBody{Outcome: v.Name, Status: v.Status, Message: msg, Comment: v.comment}
	if c := v.claims; c != nil {
		b.Action, b.Label, b.Type = c.Action.Name, c.Action.DisplayLabel(), string(c.Action.Type)
		b.Approver = v.approver()
		exp := c.ExpiresAt.UTC()
		b.ExpiresAt = &exp
	}
	if v.signedIn != nil {
		b.SignedInAs = v.signedIn.Email
	}
	// Copies, not pointers into v: a pointer into v would move v, and the
	// claims it points to, to the heap on every request, pages included.
	if decidedAt := v.decidedAt; !decidedAt.IsZero() {
		b.DecidedAt = &decidedAt
	}
	b.RedirectURL = v.redirect
	if approvals, required := v.approvals, v.required; v.tallied {
		b.Approvals, b.Required = &approvals, &required
	}
	if v.decided != nil && v.Name == outGone.Name {
		b.DecidedBy, b.DecidedAction = v.decided.Approver, v.decided.Action
	}
	out, _ := json.Marshal(b)
	out = append(out, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(v.Status)
	_, _ = w.Write(out)
}
