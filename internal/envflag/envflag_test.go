package envflag

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

type cfg struct {
	Queue string
	Conc  int
	Grace time.Duration
}

func parse(env map[string]string, args ...string) (cfg, error) {
	var c cfg
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s := New(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	s.String(&c.Queue, "queue-url", "APPROVALS_QUEUE_URL", "", "queue", true)
	s.Int(&c.Conc, "concurrency", "APPROVALS_CONCURRENCY", 16, "n", 1, 1000)
	s.Duration(&c.Grace, "grace", "APPROVALS_GRACE", 30*time.Second, "g", time.Second, time.Hour)
	return c, s.Parse(args)
}

func TestPrecedence(t *testing.T) {
	c, err := parse(map[string]string{"APPROVALS_QUEUE_URL": "env-q", "APPROVALS_CONCURRENCY": "8"}, "-queue-url", "flag-q")
	if err != nil {
		t.Fatal(err)
	}
	if c.Queue != "flag-q" || c.Conc != 8 || c.Grace != 30*time.Second {
		t.Errorf("got %+v", c)
	}
}

func TestErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"missing required", map[string]string{}, []string{"APPROVALS_QUEUE_URL (-queue-url) is required"}},
		{"malformed int and duration, all at once",
			map[string]string{"APPROVALS_QUEUE_URL": "q", "APPROVALS_CONCURRENCY": "lots", "APPROVALS_GRACE": "soon"},
			[]string{"APPROVALS_CONCURRENCY: \"lots\" is not a whole number", "APPROVALS_GRACE: \"soon\" is not a duration"}},
		{"out of range", map[string]string{"APPROVALS_QUEUE_URL": "q", "APPROVALS_CONCURRENCY": "0"},
			[]string{"APPROVALS_CONCURRENCY (-concurrency): 0 is out of range"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(tt.env)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
