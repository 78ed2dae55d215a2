package channel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// pathSecret stands for the credential in a Slack or Teams webhook URL.
const pathSecret = "/services/T0000/B0000/slackPathSecret"

// receiver stands in for a service: it checks a post as the service
// would (method, content type, size, body shape) and answers 400 with
// the reason when something is wrong, or answer otherwise.
type receiver struct {
	typ      Type
	secret   string
	now      time.Time
	answer   func(w http.ResponseWriter)
	posts    atomic.Int32
	followed atomic.Int32 // requests to /elsewhere, where redirects point
	last     atomic.Value // []byte, the last body received
	header   atomic.Value // http.Header, the last request's
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/elsewhere" {
		rc.followed.Add(1)
		return
	}
	rc.posts.Add(1)
	rc.header.Store(r.Header.Clone())
	fail := func(format string, args ...any) { http.Error(w, fmt.Sprintf(format, args...), http.StatusBadRequest) }
	if r.Method != http.MethodPost || r.URL.Path != pathSecret {
		http.NotFound(w, r)
		return
	}
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		fail("invalid content type %q", r.Header.Get("Content-Type"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		fail("read: %v", err)
		return
	}
	rc.last.Store(body)
	switch rc.typ {
	case Slack:
		err = checkSlack(body)
	case Teams:
		err = checkTeams(body)
	case Webhook:
		err = Verify(rc.secret, r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, rc.now, time.Minute)
		if err == nil {
			_, err = checkWebhookBody(body)
		}
	}
	if err != nil {
		fail("%v", err)
		return
	}
	rc.answer(w)
}

func status(code int, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

var fixedNow = time.Unix(1764590400, 0)

func setup(t *testing.T, typ Type, answer func(w http.ResponseWriter)) (*receiver, Channel) {
	t.Helper()
	rc := &receiver{typ: typ, secret: hookToken, now: fixedNow, answer: answer}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	ch := Channel{Name: "ops", Type: typ, URL: srv.URL + pathSecret}
	if typ == Webhook {
		ch.Secret = hookToken
	}
	return rc, ch
}

func poster() *Poster { return &Poster{Now: func() time.Time { return fixedNow }} }

// Every shape is taken by a receiver that checks what its service checks.
func TestPostDelivers(t *testing.T) {
	for typ, answer := range map[Type]func(http.ResponseWriter){
		Slack:   status(http.StatusOK, "ok"),
		Teams:   status(http.StatusAccepted, ""),
		Webhook: status(http.StatusNoContent, ""),
	} {
		t.Run(string(typ), func(t *testing.T) {
			rc, ch := setup(t, typ, answer)
			if err := poster().Post(context.Background(), ch, sample()); err != nil {
				t.Fatal(err)
			}
			if n := rc.posts.Load(); n != 1 {
				t.Errorf("%d posts, want 1", n)
			}
		})
	}
}

func TestPostSignsWebhooks(t *testing.T) {
	rc, ch := setup(t, Webhook, status(http.StatusOK, ""))
	if err := poster().Post(context.Background(), ch, sample()); err != nil {
		t.Fatal(err)
	}
	header := rc.header.Load().(http.Header)
	body := rc.last.Load().([]byte)
	if got := header.Get(HeaderTimestamp); got != "1764590400" {
		t.Errorf("%s = %q, want the poster's clock in Unix seconds", HeaderTimestamp, got)
	}
	if got, want := header.Get(HeaderSignature), Sign(hookToken, "1764590400", body); got != want {
		t.Errorf("%s = %q, want %q", HeaderSignature, got, want)
	}

	// A receiver with another secret refuses it, and the refusal is final.
	rc.secret = "another-long-shared-secret"
	err := poster().Post(context.Background(), ch, sample())
	if !Rejected(err) {
		t.Errorf("a refused signature: err = %v, want a rejection", err)
	}
}

// Each class of answer is sorted as the worker needs: delivered, retry the
// message, or fail the approval.
func TestPostClassifies(t *testing.T) {
	tests := []struct {
		code      int
		answer    string
		delivered bool
		rejected  bool
	}{
		{200, "ok", true, false},
		{201, "", true, false},
		{202, "", true, false},
		{204, "", true, false},
		{429, "rate_limited", false, false},
		{500, "rollup_error", false, false},
		{502, "", false, false},
		{503, "", false, false},
		{504, "", false, false},
		{400, "invalid_blocks", false, true},
		{401, "", false, true},
		{403, "action_prohibited", false, true},
		{404, "channel_not_found", false, true},
		{410, "channel_is_archived", false, true},
		{413, "", false, true},
		{301, "", false, true},
		{302, "", false, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			rc, ch := setup(t, Slack, func(w http.ResponseWriter) {
				if tt.code/100 == 3 {
					w.Header().Set("Location", "/elsewhere")
				}
				status(tt.code, tt.answer)(w)
			})

			err := poster().Post(context.Background(), ch, sample())
			if tt.delivered {
				if err != nil {
					t.Fatalf("err = %v, want delivered", err)
				}
				return
			}
			var pe *PostError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v (%T), want a *PostError", err, err)
			}
			if Rejected(err) != tt.rejected || pe.Status != tt.code {
				t.Errorf("Rejected = %t Status = %d, want %t %d", Rejected(err), pe.Status, tt.rejected, tt.code)
			}
			if !strings.Contains(err.Error(), `slack channel "ops": `+fmt.Sprint(tt.code)) || !strings.Contains(err.Error(), tt.answer) {
				t.Errorf("error %q does not name the channel, the status and the answer", err)
			}
			if want := fmt.Sprintf("channel ops (slack) answered %d %s", tt.code, http.StatusText(tt.code)); pe.Cause() != want {
				t.Errorf("Cause = %q, want %q", pe.Cause(), want)
			}
			noURL(t, err, ch)
			if rc.followed.Load() != 0 {
				t.Error("a redirect was followed")
			}
		})
	}
}

func noURL(t *testing.T, err error, ch Channel) {
	t.Helper()
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), err.(*PostError).Cause()} {
		if strings.Contains(s, ch.URL) || strings.Contains(s, "slackPathSecret") || strings.Contains(s, hookToken) {
			t.Errorf("error shows the URL or secret: %s", s)
		}
	}
}

// Without an answer the post is transient: the message is retried.
func TestPostTransient(t *testing.T) {
	t.Run("deadline", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) })
		ch := Channel{Name: "ops", Type: Slack, URL: srv.URL + pathSecret}
		p := poster()
		p.Timeout = 50 * time.Millisecond
		err := p.Post(context.Background(), ch, sample())
		transient(t, err, ch)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want a deadline", err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		ch := Channel{Name: "ops", Type: Teams, URL: srv.URL + pathSecret + "?sig=teamsQuerySecret"}
		srv.Close()
		transient(t, poster().Post(context.Background(), ch, sample()), ch)
	})
	t.Run("connection dropped", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}))
		t.Cleanup(srv.Close)
		ch := Channel{Name: "ops", Type: Webhook, URL: srv.URL + pathSecret, Secret: hookToken}
		transient(t, poster().Post(context.Background(), ch, sample()), ch)
	})
	t.Run("caller cancelled", func(t *testing.T) {
		_, ch := setup(t, Slack, status(200, "ok"))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := poster().Post(ctx, ch, sample())
		transient(t, err, ch)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
}

func transient(t *testing.T, err error, ch Channel) {
	t.Helper()
	var pe *PostError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v (%T), want a *PostError", err, err)
	}
	if Rejected(err) || pe.Status != 0 {
		t.Errorf("Rejected = %t Status = %d, want transient without a status", Rejected(err), pe.Status)
	}
	if strings.Contains(err.Error(), "teamsQuerySecret") {
		t.Errorf("error shows the query: %s", err)
	}
	noURL(t, err, ch)
}

// A message that cannot fit is refused before anything is sent.
func TestPostTooLarge(t *testing.T) {
	rc, ch := setup(t, Slack, status(200, "ok"))
	m := sample()
	m.Actions[0].URL += strings.Repeat("x", 3000)
	err := poster().Post(context.Background(), ch, m)
	if !Rejected(err) || !errors.Is(err, ErrTooLarge) {
		t.Errorf("err = %v, want a rejection for size", err)
	}
	if rc.posts.Load() != 0 {
		t.Error("posted anyway")
	}
	if c := err.(*PostError).Cause(); !strings.Contains(c, "channel ops (slack): message does not fit") {
		t.Errorf("Cause = %q", c)
	}
}

// An answer that repeats the URL (a proxy's error page, say) does not
// carry it into the error.
func TestPostRedactsAnswers(t *testing.T) {
	var url string
	rc, ch := setup(t, Slack, nil)
	rc.answer = func(w http.ResponseWriter) { status(403, "forbidden: "+url)(w) }
	url = ch.URL
	err := poster().Post(context.Background(), ch, sample())
	if !Rejected(err) {
		t.Fatalf("err = %v", err)
	}
	noURL(t, err, ch)
	if !strings.Contains(err.Error(), "forbidden: [redacted]") {
		t.Errorf("error %q lost the rest of the answer", err)
	}
}
