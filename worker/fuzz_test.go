package worker

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/mail"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sfn-approvals/sfn-approvals/channel"
	"github.com/sfn-approvals/sfn-approvals/link"
)

// FuzzDecodeRequest feeds arbitrary message bodies to the decoder and, when
// one is accepted, through composing its emails. Whatever the body, the
// decoder must not panic, must say why it refuses, must never echo the task
// token, and what it accepts must hold the contract's limits. Seeds are in
// testdata/fuzz/FuzzDecodeRequest; `make fuzz` runs it for a bounded time.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"taskToken":"T0KEN","to":["ben@example.com"],"subject":"Deploy 42"}`))
	f.Add([]byte(`{"to":["a@example.com"],"subject":"done","template":"notification","data":{"outcome":"approved"}}`))
	f.Add([]byte(`{"taskToken":"T0KEN","channels":["ops","ci"],"subject":"Deploy 42","data":{"env":"prod"}}`))
	tmpls, err := LoadTemplates("")
	if err != nil {
		f.Fatal(err)
	}
	kr, err := link.ParseKeyring(testKeys)
	if err != nil {
		f.Fatal(err)
	}
	channels, err := channel.Parse(testChannels)
	if err != nil {
		f.Fatal(err)
	}
	h := &Handler{Keyring: kr, BaseURL: testBaseURL, Sender: "approvals@example.com", Templates: tmpls, Channels: channels}

	f.Fuzz(func(t *testing.T, body []byte) {
		if json.Valid(body) {
			// The scanner agrees with encoding/json's own tokenizer.
			problems, _ := duplicateKeys(body)
			if want := hasDuplicateKeys(t, body); (len(problems) > 0) != want {
				t.Fatalf("duplicateKeys = %q, want duplicates: %t", problems, want)
			}
		}
		req, err := DecodeRequest(body, DecodeOptions{Now: testNow, Templates: tmpls, Channels: channels})
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error is not a *ValidationError: %v", err)
			}
			if len(ve.Problems) == 0 {
				t.Fatal("refused without a problem")
			}
			if ve.taskToken != "" && len(ve.taskToken) >= 8 && strings.Contains(ve.Error(), ve.taskToken) {
				t.Fatalf("problem echoes the task token: %q", ve.Error())
			}
			if cause := failureCause(ve.Problems); len(cause) > maxCauseLen {
				t.Fatalf("failure cause of %d bytes, over the Step Functions limit", len(cause))
			}
			return
		}
		if len(body) > MaxBodyBytes || !utf8.Valid(body) {
			t.Fatalf("accepted a body of %d bytes, valid UTF-8: %t", len(body), utf8.Valid(body))
		}
		n := len(req.To) + len(req.Cc)
		if (len(req.To) == 0 && len(req.Channels) == 0) || n > MaxRecipients || len(req.Channels) > MaxChannels {
			t.Fatalf("accepted %d recipients (%d in to) and %d channels", n, len(req.To), len(req.Channels))
		}
		seen := map[string]bool{}
		for _, ch := range req.Channels {
			if seen[ch.Name] {
				t.Fatalf("accepted channel %q twice", ch.Name)
			}
			seen[ch.Name] = true
		}
		if strings.ContainsAny(req.Subject, "\r\n") || strings.TrimSpace(req.Subject) == "" {
			t.Fatalf("accepted subject %q", req.Subject)
		}
		for _, a := range append(req.Recipients(), req.ReplyTo...) {
			if strings.ContainsAny(a.Address+a.Name, "\r\n") {
				t.Fatalf("accepted address %q", a.String())
			}
			// What SES is given reads back as this one address.
			list, err := mail.ParseAddressList(formatAddress(a))
			if err != nil || len(list) != 1 || list[0].Address != a.Address {
				t.Fatalf("accepted address %q is given to SES as %q, which reads as %v, %v", a.Address, formatAddress(a), list, err)
			}
		}
		if !req.Notification() {
			if len(req.Actions) == 0 || len(req.Actions) > MaxActions {
				t.Fatalf("accepted %d actions", len(req.Actions))
			}
			if !req.ExpiresAt.After(testNow) || req.ExpiresAt.After(testNow.Add(MaxExpiry)) {
				t.Fatalf("accepted expiry %s", req.ExpiresAt)
			}
		}
		// An accepted request either renders for every recipient or fails
		// with an error (a template may refuse some data): never a panic.
		emails, err := h.compose(req)
		if err == nil && len(emails) != n {
			t.Fatalf("%d emails for %d recipients", len(emails), n)
		}
		// Every channel's body is built, or the request is refused.
		posts, err := h.composePosts(req)
		if err == nil && len(posts) != len(req.Channels) {
			t.Fatalf("%d posts for %d channels", len(posts), len(req.Channels))
		}
	})
}

// hasDuplicateKeys is the slow, obvious check duplicateKeys is held to:
// encoding/json's tokens, a set of keys per open object.
func hasDuplicateKeys(t *testing.T, body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type level struct {
		obj      bool
		keys     map[string]bool
		wantsKey bool
	}
	var stack []*level
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return false
		}
		if err != nil {
			t.Fatalf("token: %v", err)
		}
		var top *level
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if top != nil && top.obj {
					top.wantsKey = true // this value ends a key/value pair
				}
				stack = append(stack, &level{obj: d == '{', keys: map[string]bool{}, wantsKey: d == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if top == nil || !top.obj {
			continue
		}
		if top.wantsKey {
			k := tok.(string)
			if top.keys[k] {
				return true
			}
			top.keys[k] = true
			top.wantsKey = false
			continue
		}
		top.wantsKey = true
	}
}
