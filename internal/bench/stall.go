package bench

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sfn-approvals/sfn-approvals/internal/faultproxy"
)

// stallOps are the answers a worker phase is watched by: while requests
// wait, the worker receives and sends without pause, so a gap of StallGap
// between two of either means it is waiting for something (messages
// stranded by a lost receive answer come back only after the visibility
// timeout), and the phase's figures include that wait.
var stallOps = []string{"ReceiveMessage", "SendEmail"}

// Stall is a gap of StallGap or more between two answers of one operation
// during a worker phase.
type Stall struct {
	Phase string
	Op    string
	At    time.Duration // from the start of the phase's worker to the gap's end
	Gap   time.Duration
}

// stallWatch sees every answer of the fault proxy and notes the gaps while
// armed.
type stallWatch struct {
	mu     sync.Mutex
	phase  string // "" when not armed
	start  time.Time
	last   map[string]time.Time
	stalls []Stall
}

// handler wraps the fault proxy.
func (s *stallWatch) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, op := faultproxy.Classify(r)
		next.ServeHTTP(w, r)
		s.answered(op, time.Now())
	})
}

// arm starts watching a phase: the first answer of each operation after
// it starts that operation's clock.
func (s *stallWatch) arm(phase string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.phase, s.start, s.last = phase, now, map[string]time.Time{}
}

// disarm stops watching and returns every stall noted since arm.
func (s *stallWatch) disarm() []Stall {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.phase = ""
	out := s.stalls
	s.stalls = nil
	return out
}

func (s *stallWatch) answered(op string, now time.Time) {
	if !slices.Contains(stallOps, op) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.phase == "" {
		return
	}
	if prev, ok := s.last[op]; ok && now.Sub(prev) >= StallGap {
		s.stalls = append(s.stalls, Stall{Phase: s.phase, Op: op, At: now.Sub(s.start), Gap: now.Sub(prev)})
	}
	s.last[op] = now
}

// count is how many stalls are noted so far, for the progress line.
func (s *stallWatch) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.stalls)
}

// stallSummary is the stall row's result: "none", or how many and the
// longest few.
func stallSummary(stalls []Stall) string {
	if len(stalls) == 0 {
		return "**none**"
	}
	sorted := slices.Clone(stalls)
	slices.SortStableFunc(sorted, func(a, b Stall) int { return int(b.Gap - a.Gap) })
	var parts []string
	for _, s := range sorted[:min(len(sorted), 4)] {
		parts = append(parts, fmt.Sprintf("%s %s %.1f s (ending %.1f s in)", s.Phase, s.Op, s.Gap.Seconds(), s.At.Seconds()))
	}
	if len(sorted) > 4 {
		parts = append(parts, fmt.Sprintf("%d more", len(sorted)-4))
	}
	return fmt.Sprintf("**%d**: %s", len(stalls), strings.Join(parts, ", "))
}
