package channel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// DefaultTimeout is a post's deadline when Poster.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Poster posts messages to channels. Its zero value is usable: it posts
// with http.DefaultClient's transport and a DefaultTimeout deadline.
type Poster struct {
	// Client sends the requests; nil means http.DefaultClient. Redirects
	// are never followed whatever its CheckRedirect says: a webhook URL
	// that moved is a configuration to fix, and following a 30x would
	// turn the POST into a GET.
	Client *http.Client
	// Timeout bounds each post, connection and answer included; zero
	// means DefaultTimeout.
	Timeout time.Duration
	// Now is the clock of webhook timestamps; nil means time.Now.
	Now func() time.Time
}

// maxAnswer is how much of an answer is read: Slack and Teams answer in a
// few bytes ("ok", "invalid_blocks"), and the rest is drained up to
// maxDrain so the connection can be reused.
const (
	maxAnswer = 256
	maxDrain  = 64 << 10
)

// Post sends m to ch once. It returns nil when the service answered 2xx,
// and otherwise a *PostError: Rejected tells a verdict on the message (any
// other answer, or a message that does not fit) from a transient failure
// (429, 5xx, network errors, the deadline). No retry is made here: the
// caller retries the whole message. Neither the URL nor the secret is in
// any error.
func (p *Poster) Post(ctx context.Context, ch Channel, m Message) error {
	body, err := Body(ch.Type, m)
	if err != nil {
		return &PostError{Channel: ch.Name, Type: ch.Type, Permanent: true, err: err}
	}
	return p.PostBody(ctx, ch, body)
}

// PostBody sends a body made by Body(ch.Type, ...) to ch, signing it for a
// webhook channel; it answers as Post does.
func (p *Poster) PostBody(ctx context.Context, ch Channel, body []byte) error {
	fail := func(status int, permanent bool, err error) error {
		return &PostError{Channel: ch.Name, Type: ch.Type, Status: status, Permanent: permanent, err: redact(err, ch)}
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ch.URL, bytes.NewReader(body))
	if err != nil {
		// The URL was checked at start, so this is the configuration.
		return fail(0, true, errors.New("cannot build the request from the configured URL"))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sfn-approvals")
	if ch.Type == Webhook {
		now := time.Now
		if p.Now != nil {
			now = p.Now
		}
		ts := strconv.FormatInt(now().Unix(), 10)
		req.Header.Set(HeaderTimestamp, ts)
		req.Header.Set(HeaderSignature, Sign(ch.Secret, ts, body))
	}
	resp, err := p.client().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error's text has the URL in it
		}
		return fail(0, false, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusTooManyRequests || code >= 500:
		return fail(code, false, answerError(answer))
	default:
		return fail(code, true, answerError(answer))
	}
}

func (p *Poster) client() *http.Client {
	c := http.DefaultClient
	if p.Client != nil {
		c = p.Client
	}
	cp := *c
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

// answerError keeps the printable start of a service's answer, which
// names the reason (Slack: invalid_blocks, channel_not_found, ...).
func answerError(b []byte) error {
	s := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, strings.ToValidUTF8(string(b), ""))
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	return errors.New(truncate(s, 100))
}

// redact removes the channel's URL and secret, and their parts that carry
// the credential (path and query), from an error's text, in case a
// transport or a receiver's answer repeats them.
func redact(err error, ch Channel) error {
	if err == nil {
		return nil
	}
	s := err.Error()
	secrets := []string{ch.URL, ch.Secret}
	if u, perr := url.Parse(ch.URL); perr == nil {
		secrets = append(secrets, u.RawQuery, u.EscapedPath())
		if u.Path != "/" {
			secrets = append(secrets, u.Path)
		}
	}
	clean := s
	for _, x := range secrets {
		if len(x) > 1 {
			clean = strings.ReplaceAll(clean, x, "[redacted]")
		}
	}
	if clean == s {
		return err // keep the chain for errors.Is (context.DeadlineExceeded)
	}
	return &redacted{text: clean, err: err}
}

// redacted is an error whose text had a credential removed. It answers
// errors.Is for the original (context.DeadlineExceeded stays one) but does
// not unwrap to it, so nothing can print the original text.
type redacted struct {
	text string
	err  error
}

func (r *redacted) Error() string        { return r.text }
func (r *redacted) Is(target error) bool { return errors.Is(r.err, target) }

// PostError is a post that did not deliver. Its text names the channel,
// its type and the status, never the URL.
type PostError struct {
	Channel string
	Type    Type
	// Status is the HTTP status answered; 0 when there was none
	// (network error, deadline, or a message that did not fit).
	Status int
	// Permanent is a verdict on the message or the channel: posting
	// again will not change it.
	Permanent bool
	err       error
}

func (e *PostError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "post to %s channel %q", e.Type, e.Channel)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.err != nil {
		b.WriteString(": ")
		b.WriteString(e.err.Error())
	}
	return b.String()
}

func (e *PostError) Unwrap() error { return e.err }

// Cause is the text for Approvals.ChannelRejected's cause: the channel and
// what it answered, nothing a state machine's reader should not see.
func (e *PostError) Cause() string {
	switch {
	case e.Status != 0:
		return fmt.Sprintf("channel %s (%s) answered %d %s", e.Channel, e.Type, e.Status, http.StatusText(e.Status))
	case errors.Is(e.err, ErrTooLarge):
		return fmt.Sprintf("channel %s (%s): %s", e.Channel, e.Type, e.err)
	}
	return fmt.Sprintf("channel %s (%s) could not be posted to", e.Channel, e.Type)
}

// Rejected reports whether err is a post the channel refused for good, so
// the approval is failed (Approvals.ChannelRejected) rather than retried.
func Rejected(err error) bool {
	var pe *PostError
	return errors.As(err, &pe) && pe.Permanent
}
