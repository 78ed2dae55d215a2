package soak

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sfn-approvals/sfn-approvals/internal/kumo"
	"github.com/sfn-approvals/sfn-approvals/internal/kumotest"
	"github.com/sfn-approvals/sfn-approvals/internal/stack"
)

func TestMain(m *testing.M) { kumotest.Main(m) }

// TestSmallSoak is make soak in miniature: 40 executions through faults,
// one SIGKILL of the worker and one of the redeemer, duplicate deliveries,
// 2-of-3 requests whose approvers click at once, a stalled SES and an
// operator-error window (SendingPausedException), and the bot. It asserts
// the ledger's accounting, never how long anything took.
func TestSmallSoak(t *testing.T) {
	root, err := kumo.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := stack.BuildServices(root, bin); err != nil {
		t.Fatal(err)
	}
	var progress strings.Builder
	l, err := Run(context.Background(), Options{
		Dirs: stack.Dirs{Root: root, BinDir: bin, LogDir: filepath.Join(bin, "logs")}, ExternalKumo: true,
		Executions: 40, Kills: 1, RedeemerKills: 1, QuorumRate: 0.3, StartRate: 20, InvalidRate: 0.1,
		StallWindow: 3 * time.Second, OperatorWindow: 3 * time.Second,
		// Bounds a broken run; a good one ends as soon as all is accounted.
		Settle:   5 * time.Minute,
		Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ledger:\n%s", l.Markdown())
	if err := l.Err(); err != nil {
		logs, _ := os.ReadFile(filepath.Join(bin, "logs", "worker.log"))
		t.Fatalf("%v\nworker log tail:\n%s", err, tail(string(logs), 3000))
	}
	if l.Started != 40 || l.Kills != 1 || l.RedeemerKills != 1 {
		t.Errorf("started %d, worker kills %d, redeemer kills %d; want 40, 1, 1", l.Started, l.Kills, l.RedeemerKills)
	}
	// Every 2-of-3 request ended once, with exactly two decisions: none
	// lost, none hanging, none decided twice.
	if l.QuorumStarted == 0 || l.QuorumDecided != l.QuorumStarted {
		t.Errorf("%d of %d 2-of-3 requests ended with exactly 2 decisions; want some, all", l.QuorumDecided, l.QuorumStarted)
	}
	if l.Completions != l.Approved+l.Rejected {
		t.Errorf("%d completion records for %d decisions", l.Completions, l.Approved+l.Rejected)
	}
	if l.Invalid == 0 || l.FailedFast != l.Invalid {
		t.Errorf("invalid %d, failed fast %d: want some, all failed fast", l.Invalid, l.FailedFast)
	}
	if got := l.Approved + l.Rejected + l.FailedFast + l.StillRunning; got != l.Started {
		t.Errorf("approved %d + rejected %d + failed fast %d + running %d = %d, want every one of %d started",
			l.Approved, l.Rejected, l.FailedFast, l.StillRunning, got, l.Started)
	}
	if l.EmailsMin < 1 {
		t.Errorf("a valid request got %d emails", l.EmailsMin)
	}
	if l.EmailedTwice != l.DuplicateGone {
		// Every second copy's link was tried, and decided nothing anew.
		t.Errorf("%d approvers emailed twice, %d duplicate links answered 410 or the same decision", l.EmailedTwice, l.DuplicateGone)
	}
	if l.Faults["sesv2"].Requests == 0 || l.Faults["sesv2"].Throttled+l.Faults["sesv2"].ServerErrors == 0 {
		t.Errorf("no faults injected into SES: %+v", l.Faults["sesv2"])
	}
	// The windows happened, failed nothing and left nothing hanging.
	ses := l.Faults["sesv2"]
	if ses.Stalls == 0 || ses.APIErrors == 0 {
		t.Errorf("SES windows injected nothing: %+v", ses)
	}
	if ses.StallsOpen != 0 {
		t.Errorf("%d stalled SES calls still held open", ses.StallsOpen)
	}
	if l.OperatorFailed != 0 || l.FailedFast != l.Invalid {
		t.Errorf("%d executions failed by an operator's error, %d valid ones failed fast", l.OperatorFailed, l.FailedFast-l.Invalid)
	}
	if !strings.Contains(progress.String(), "started 40/40") {
		t.Errorf("progress line never showed the last start:\n%q", tail(progress.String(), 500))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
