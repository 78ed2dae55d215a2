package votes

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sfn-approvals/sfn-approvals/approval"
)

func TestTally(t *testing.T) {
	b := setup(t)
	tally := func(approver string) Tally {
		t.Helper()
		got, err := b.store.Tally(context.Background(), token, approver, 3)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if diff := cmp.Diff(Tally{Required: 3}, tally("ann@example.com")); diff != "" {
		t.Errorf("no votes (-want +got):\n%s", diff)
	}
	b.vote(t, "ann@example.com", approve, 3)
	ann := dec("ann@example.com", "approve")
	if diff := cmp.Diff(Tally{Approvals: 1, Required: 3, Mine: &ann}, tally("ANN@example.com")); diff != "" {
		t.Errorf("one vote, asked by its approver (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Tally{Approvals: 1, Required: 3}, tally("ben@example.com")); diff != "" {
		t.Errorf("one vote, asked by another (-want +got):\n%s", diff)
	}
	if calls := b.task.recorded(); len(calls) != 0 {
		t.Errorf("a tally called Step Functions: %+v", calls)
	}
	b.vote(t, "ben@example.com", reject, 3)
	ben := dec("ben@example.com", "reject")
	want := Tally{Approvals: 1, Required: 3, Decided: true, Type: approval.Failure, Decision: &ben, Decisions: []approval.Decision{ann}}
	if diff := cmp.Diff(want, tally("cy@example.com")); diff != "" {
		t.Errorf("vetoed (-want +got):\n%s", diff)
	}
	if _, err := b.store.Tally(context.Background(), "", "ann@example.com", 1); err == nil {
		t.Error("a tally without a task token succeeded")
	}
}

// Approvers racing for the deciding vote lose conditional writes, and each
// loss is reported.
func TestOnConflict(t *testing.T) {
	var lost atomic.Int64
	b := &bundle{table: newFakeTable(tableName), task: newFakeTask(), clock: &clock{now: t0}}
	s, err := New(b.table, b.task, Config{Table: tableName, Lease: time.Minute, Now: b.clock.Now, OnConflict: func() { lost.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	var first sync.WaitGroup
	first.Add(n)
	var queries atomic.Int64
	b.table.afterQuery = func() {
		// Every caller's first read ends before anyone writes: each then
		// tries to claim the decision, and all but one lose.
		if queries.Add(1) <= n {
			first.Done()
			first.Wait()
		}
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Vote(context.Background(), ballot(fmt.Sprintf("p%d@example.com", i), approve, 1)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := lost.Load(); got != n-1 {
		t.Errorf("%d conflicts reported, want %d", got, n-1)
	}
	if calls := b.task.recorded(); len(calls) != 1 {
		t.Errorf("Step Functions took %d answers, want 1", len(calls))
	}
}

// After the decision, its voters get it again for the same button (a
// retried POST) and gone for another: that is not the decision they made.
func TestDecidedAgain(t *testing.T) {
	b := setup(t)
	b.vote(t, "ann@example.com", approve, 1)
	if r := b.vote(t, "ANN@example.com", approve, 1); r.Outcome != Decided || r.Completed {
		t.Errorf("the same approval again = %+v, want Decided, not completed again", r)
	}
	if r := b.vote(t, "ann@example.com", reject, 1); r.Outcome != Gone || r.Decision == nil || r.Decision.Action != "approve" {
		t.Errorf("the decider pressing reject = %+v, want Gone naming the approval", r)
	}
	if calls := b.task.recorded(); len(calls) != 1 {
		t.Errorf("Step Functions took %d answers, want 1", len(calls))
	}
}
