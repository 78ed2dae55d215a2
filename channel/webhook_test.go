package channel

import (
	"errors"
	"testing"
	"time"
)

// The vector was computed outside Go:
//
//	printf '%s' '1764590400.{"subject":"x"}' | openssl dgst -sha256 -hmac 'a-long-random-shared-secret'
func TestSign(t *testing.T) {
	got := Sign("a-long-random-shared-secret", "1764590400", []byte(`{"subject":"x"}`))
	if want := "sha256=f12afd9ced10460403507b127ec79d9ee6cb56f38b2a3964b56b0356d17d7680"; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	const secret = "a-long-random-shared-secret"
	body := []byte(`{"subject":"x"}`)
	sent := time.Unix(1764590400, 0)
	ts := "1764590400"
	sig := Sign(secret, ts, body)
	tests := []struct {
		name      string
		secret    string
		ts, sig   string
		body      []byte
		now       time.Time
		tolerance time.Duration
		want      error
	}{
		{"good", secret, ts, sig, body, sent.Add(time.Second), time.Minute, nil},
		{"at the edge", secret, ts, sig, body, sent.Add(time.Minute), time.Minute, nil},
		{"receiver's clock behind", secret, ts, sig, body, sent.Add(-time.Minute), time.Minute, nil},
		{"too old", secret, ts, sig, body, sent.Add(time.Minute + time.Second), time.Minute, ErrStale},
		{"from the future", secret, ts, sig, body, sent.Add(-time.Minute - time.Second), time.Minute, ErrStale},
		{"default tolerance keeps 5m", secret, ts, sig, body, sent.Add(5 * time.Minute), 0, nil},
		{"default tolerance refuses past 5m", secret, ts, sig, body, sent.Add(5*time.Minute + time.Second), 0, ErrStale},
		{"body changed", secret, ts, sig, []byte(`{"subject":"y"}`), sent, time.Minute, ErrBadSignature},
		{"timestamp changed", secret, "1764590401", sig, body, sent, time.Minute, ErrBadSignature},
		{"other secret", "another-long-shared-secret", ts, sig, body, sent, time.Minute, ErrBadSignature},
		{"no prefix", secret, ts, sig[len("sha256="):], body, sent, time.Minute, ErrBadSignature},
		{"not hex", secret, ts, "sha256=zz", body, sent, time.Minute, ErrBadSignature},
		{"truncated", secret, ts, sig[:len(sig)-2], body, sent, time.Minute, ErrBadSignature},
		{"no signature", secret, ts, "", body, sent, time.Minute, ErrNoSignature},
		{"no timestamp", secret, "", sig, body, sent, time.Minute, ErrNoSignature},
		{"signed timestamp", secret, "+1764590400", Sign(secret, "+1764590400", body), body, sent, time.Minute, ErrBadTimestamp},
		{"timestamp in ms", secret, "1764590400000", Sign(secret, "1764590400000", body), body, sent, time.Minute, ErrStale},
		{"timestamp overflows", secret, "99999999999999999999", sig, body, sent, time.Minute, ErrBadTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.ts, tt.sig, tt.body, tt.now, tt.tolerance)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}
