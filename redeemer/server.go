package redeemer

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sfn-approvals/sfn-approvals/identity"
	"github.com/sfn-approvals/sfn-approvals/internal/httpx"
	"github.com/sfn-approvals/sfn-approvals/link"
	"github.com/sfn-approvals/sfn-approvals/metrics"
)

// taskCompleter is the part of the Step Functions client the redeemer uses;
// *sfn.Client satisfies it.
type taskCompleter interface {
	SendTaskSuccess(ctx context.Context, in *sfn.SendTaskSuccessInput, opts ...func(*sfn.Options)) (*sfn.SendTaskSuccessOutput, error)
	SendTaskFailure(ctx context.Context, in *sfn.SendTaskFailureInput, opts ...func(*sfn.Options)) (*sfn.SendTaskFailureOutput, error)
	SendTaskHeartbeat(ctx context.Context, in *sfn.SendTaskHeartbeatInput, opts ...func(*sfn.Options)) (*sfn.SendTaskHeartbeatOutput, error)
}

var _ taskCompleter = (*sfn.Client)(nil)

// Server is the redeemer's HTTP handler: links, the stylesheet and /healthz.
type Server struct {
	cfg   Config
	sfn   taskCompleter
	votes voteStore // nil: no votes table
	m     *metrics.Redeemer
	log   *slog.Logger
	pages *template.Template
	// styleHref is set when the page templates are the built-in ones
	// (isBuiltinPages): pages are then written by writeConfirm and
	// writeOutcome, with this stylesheet URL.
	styleHref string
	css       []byte
	base      string // path prefix of every route except /healthz, no trailing slash
	links     string // base + link.PathPrefix: everything under it is a link
	mux       *http.ServeMux
	limiter   *limiter           // nil: no rate limit
	verifier  *identity.Verifier // nil: IdentityLink, no sign-in to check
	hsts      bool               // the base URL is https: every response says so
	routes    routeMetrics
	linkOK    prometheus.Counter // link_checks_total{result="ok"}, resolved once
	draining  atomic.Bool
}

// StylePath is where the stylesheet is served, under the base URL's path.
const StylePath = "/assets/style.css"

// hstsValue is a year, so an approver who opens links now and then stays
// covered; not for subdomains, which may be other services' business.
const hstsValue = "max-age=31536000"

// New builds a Server. It parses the page templates once, so a broken
// override fails here, at start-up, not on an approver's click.
func New(cfg Config, sfnc taskCompleter, reg prometheus.Registerer, log *slog.Logger) (*Server, error) {
	cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("redeemer config: %w", err)
	}
	if sfnc == nil {
		return nil, errors.New("redeemer: no Step Functions client")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pages, css, err := parsePages(cfg.Templates)
	if err != nil {
		return nil, err
	}
	base, _ := basePath(cfg.BaseURL)
	s := &Server{cfg: cfg, sfn: sfnc, m: metrics.NewRedeemer(reg), log: log, pages: pages, css: css, base: base,
		links: base + link.PathPrefix}
	s.routes.init(s.m)
	s.linkOK = s.m.LinkChecks.WithLabelValues(metrics.LinkOK)
	if isBuiltinPages(cfg.Templates) {
		s.styleHref = styleHref(base + StylePath)
	}
	if u, err := url.Parse(cfg.BaseURL); err == nil && u.Scheme == "https" {
		s.hsts = true
	}
	if cfg.Identity == IdentityALB {
		if cfg.ALB.Now == nil {
			cfg.ALB.Now = cfg.Now // one clock for links and sign-ins
		}
		if s.verifier, err = identity.New(cfg.ALB); err != nil {
			return nil, fmt.Errorf("redeemer config: ALB sign-in: %w", err)
		}
	}
	if cfg.VotesTable != "" {
		if s.votes, err = s.newVoteStore(); err != nil {
			return nil, err
		}
	}
	if cfg.RateLimit > 0 { // not RateLimitOff
		s.limiter = newLimiter(cfg.RateLimit, cfg.RateBurst, cfg.Now)
		s.limiter.evicted = s.m.RateLimitEvictions.Inc
	}

	// Links are not in the mux: ServeHTTP routes them itself (see there).
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET "+base+StylePath, s.handleStyle)
	s.mux.HandleFunc("GET /healthz", s.handleHealth)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.respond(w, r, view{outcome: outNotFound})
	})
	return s, nil
}

// CheckTemplates parses the page templates in fsys the way New does, so
// configuration errors can name the variable that pointed at them.
func CheckTemplates(fsys fs.FS) error {
	_, _, err := parsePages(fsys)
	return err
}

func parsePages(fsys fs.FS) (*template.Template, []byte, error) {
	t, err := template.New("pages").Option("missingkey=error").ParseFS(fsys, "pages/*.html.tmpl")
	if err != nil {
		return nil, nil, fmt.Errorf("parse page templates: %w", err)
	}
	for _, name := range []string{"confirm.html.tmpl", "outcome.html.tmpl", "top", "bottom"} {
		if t.Lookup(name) == nil {
			return nil, nil, fmt.Errorf("parse page templates: %s is missing", name)
		}
	}
	css, err := fs.ReadFile(fsys, "pages/style.css")
	if err != nil {
		return nil, nil, fmt.Errorf("read stylesheet: %w", err)
	}
	return t, css, nil
}

// Drain marks the server as shutting down: from then on /healthz answers
// 503. Serve calls it when its context ends, just before it closes the
// listener, so the 503 is seen on the admin listener (which outlives the
// drain) rather than by the load balancer: on ECS the target is already
// deregistered and drained when SIGTERM arrives (see Serve).
func (s *Server) Drain() { s.draining.Store(true) }

// Healthy is nil until Drain is called.
func (s *Server) Healthy() error {
	if s.draining.Load() {
		return errors.New("draining")
	}
	return nil
}

// Metrics labels of the routes (metrics.Routes).
const (
	routeLinkGet  = "link_get"
	routeLinkPost = "link_post"
	routeOther    = "other"
)

// ServeHTTP applies what every response gets (security headers, the body
// limit, request metrics) and routes. Links are routed here, by their path
// prefix, rather than by a mux pattern: a wildcard match unescapes the ~2 KB
// path, which cost a tenth of a GET, and a link token is base64url, which
// needs no unescaping. Anything under the prefix is a link, so a link a
// mail program cut short (even to nothing) gets "link not valid" (400), not
// 404, and is rate limited like any other.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	h := w.Header()
	setSecurityHeaders(h)
	if s.hsts {
		// Links are https: a browser that has seen one never asks over
		// plain http again, where the token would travel in the clear.
		h[hstsHeader.key] = hstsHeader.value
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	}
	sw := &httpx.StatusRecorder{ResponseWriter: w}
	route := routeOther
	if tok, isLink := strings.CutPrefix(r.URL.Path, s.links); isLink {
		route = routeLinkGet
		if r.Method == http.MethodPost {
			route = routeLinkPost
		}
		s.serveLink(sw, r, tok)
	} else {
		s.mux.ServeHTTP(sw, r)
	}
	s.routes.requests(route, sw.Status()).Inc()
	s.routes.duration(route).Observe(time.Since(start).Seconds())
}

// serveLink answers a request for the link tok. The rate limit comes first:
// a flood costs no decryption.
func (s *Server) serveLink(w http.ResponseWriter, r *http.Request, tok string) {
	if s.rateLimited(w, r) {
		return
	}
	s.handleLink(w, r, tok)
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.Healthy(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, err)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (s *Server) handleStyle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(s.css)))
	if r.Method != http.MethodHead {
		_, _ = w.Write(s.css)
	}
}

// handleLink routes by method: GET and HEAD only look, POST decides.
func (s *Server) handleLink(w http.ResponseWriter, r *http.Request, tok string) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.confirm(w, r, tok)
	case http.MethodPost:
		s.decide(w, r, tok)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		s.respond(w, r, view{outcome: outMethodNotAllowed})
	}
}
