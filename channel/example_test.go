package channel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/sfn-approvals/sfn-approvals/approval"
	"github.com/sfn-approvals/sfn-approvals/channel"
)

// A receiver of webhook channel posts: it reads the exact body, verifies
// the signature and the timestamp with Verify, and only then trusts the
// JSON. The worker posts to it; a post signed with another secret is
// refused, and the worker takes a 401 as final.
func Example_receiver() {
	const secret = "a-long-random-shared-secret"

	approvals := make(chan string, 1)
	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		err = channel.Verify(secret,
			r.Header.Get("X-Approvals-Timestamp"), r.Header.Get("X-Approvals-Signature"),
			body, time.Now(), 5*time.Minute)
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var msg struct {
			Subject string `json:"subject"`
			Actions []struct {
				Name string `json:"name"`
				URL  string `json:"url"`
			} `json:"actions"`
		}
		if err := json.Unmarshal(body, &msg); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		approvals <- fmt.Sprintf("%s: %d actions, first %s", msg.Subject, len(msg.Actions), msg.Actions[0].Name)
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewServer(receiver)
	defer srv.Close()

	msg := channel.Message{
		Subject:      "Approve deployment 42",
		Actions:      []channel.Action{{Name: "approve", Label: "Approve", Type: approval.Success, URL: "https://approvals.example.com/a/AAAA"}},
		ExpiresAt:    time.Now().Add(72 * time.Hour),
		MinApprovals: 1,
	}
	var p channel.Poster
	good := channel.Channel{Name: "ci", Type: channel.Webhook, URL: srv.URL + "/hook", Secret: secret}
	fmt.Println(p.Post(context.Background(), good, msg), <-approvals)

	forged := good
	forged.Secret = "not-the-shared-secret"
	err := p.Post(context.Background(), forged, msg)
	fmt.Println(channel.Rejected(err), err)
	// Output:
	// <nil> Approve deployment 42: 1 actions, first approve
	// true post to webhook channel "ci": 401 Unauthorized: bad signature
}
