package channel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/sfn-approvals/sfn-approvals/validate"
)

// Type is the kind of service a channel posts to.
type Type string

const (
	// Slack is a Slack incoming webhook (Block Kit message).
	Slack Type = "slack"
	// Teams is a Microsoft Teams Workflows webhook (Adaptive Card).
	Teams Type = "teams"
	// Webhook is any HTTPS endpoint taking the signed JSON body.
	Webhook Type = "webhook"
)

// Valid reports whether t is one of the known channel types.
func (t Type) Valid() bool {
	switch t {
	case Slack, Teams, Webhook:
		return true
	}
	return false
}

// MinSecretLen is the shortest webhook secret accepted: 16 characters of
// random text are beyond guessing, and anything shorter is likely a
// placeholder left in place.
const MinSecretLen = 16

// nameRE is what a channel name may be: it appears in recipients
// ("channel:NAME"), metrics labels and logs, so no colons, spaces or quotes.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Channel is one configured destination. URL and Secret are credentials:
// String, GoString and LogValue leave them out.
type Channel struct {
	Name   string
	Type   Type
	URL    string
	Secret string // Webhook only
}

// String names the channel and its type, never its URL or secret.
func (c Channel) String() string { return fmt.Sprintf("%s channel %q", c.Type, c.Name) }

// GoString keeps %#v from printing the URL and secret.
func (c Channel) GoString() string {
	return fmt.Sprintf("channel.Channel{Name: %q, Type: %q, URL: [redacted], Secret: [redacted]}", c.Name, c.Type)
}

// LogValue logs the name and type only.
func (c Channel) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", c.Name), slog.String("type", string(c.Type)))
}

// Config is the parsed APPROVALS_CHANNELS: channels by name. The zero
// Config has no channels.
type Config struct {
	byName map[string]Channel
}

// Lookup returns the channel called name.
func (c Config) Lookup(name string) (Channel, bool) {
	ch, ok := c.byName[name]
	return ch, ok
}

// Names lists the channel names, sorted.
func (c Config) Names() []string {
	names := make([]string, 0, len(c.byName))
	for n := range c.byName {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Len is the number of channels.
func (c Config) Len() int { return len(c.byName) }

// String lists the channels as `name (type)`, never a URL or secret.
func (c Config) String() string {
	parts := make([]string, 0, len(c.byName))
	for _, n := range c.Names() {
		parts = append(parts, fmt.Sprintf("%s (%s)", n, c.byName[n].Type))
	}
	return strings.Join(parts, ", ")
}

// GoString keeps %#v from printing URLs and secrets.
func (c Config) GoString() string { return "channel.Config{" + c.String() + "}" }

// LogValue logs each channel's type under its name.
func (c Config) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, len(c.byName))
	for _, n := range c.Names() {
		attrs = append(attrs, slog.String(n, string(c.byName[n].Type)))
	}
	return slog.GroupValue(attrs...)
}

// entry is one channel as written in APPROVALS_CHANNELS.
type entry struct {
	Type   *string `json:"type"`
	URL    *string `json:"url"`
	Secret *string `json:"secret"`
}

// Parse reads APPROVALS_CHANNELS: a JSON object from channel name to
// {"type", "url", "secret"}, or "@" and the path of a file holding it. An
// empty value is no channels. Every entry is checked and every problem
// reported, each naming its channel; no URL or secret is ever quoted.
func Parse(value string) (Config, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return Config{}, nil
	}
	doc := []byte(value)
	if path, ok := strings.CutPrefix(value, "@"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			// os errors name the path, which is not a secret.
			return Config{}, fmt.Errorf("read channels file: %w", err)
		}
		doc = b
	}
	return parseJSON(doc)
}

// parseJSON walks the top-level object itself, so that a name given twice
// is an error instead of the last one silently winning.
func parseJSON(doc []byte) (Config, error) {
	errNotObject := errors.New("not a JSON object from channel name to {\"type\", \"url\", \"secret\"}")
	dec := json.NewDecoder(bytes.NewReader(doc))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return Config{}, errNotObject
	}
	cfg := Config{byName: map[string]Channel{}}
	var problems []string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return Config{}, errNotObject
		}
		name := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return Config{}, errNotObject
		}
		if seen[name] {
			problems = append(problems, fmt.Sprintf("channel %q: given twice", name))
			continue
		}
		seen[name] = true
		ch, errs := parseEntry(name, raw)
		for _, e := range errs {
			problems = append(problems, fmt.Sprintf("channel %q: %s", name, e))
		}
		if len(errs) == 0 {
			cfg.byName[name] = ch
		}
	}
	if _, err := dec.Token(); err != nil {
		return Config{}, errNotObject
	}
	if _, err := dec.Token(); err != io.EOF {
		return Config{}, errNotObject
	}
	if len(problems) > 0 {
		return Config{}, errors.New(strings.Join(problems, "; "))
	}
	return cfg, nil
}

// parseEntry checks one channel. Its messages never include the entry's
// values, only its field names: a json error could quote part of a URL.
func parseEntry(name string, raw json.RawMessage) (Channel, []string) {
	var problems []string
	if !nameRE.MatchString(name) {
		problems = append(problems, "name must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	var e entry
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		if f, ok := unknownField(err); ok {
			return Channel{}, append(problems, fmt.Sprintf("unknown field %q (have type, url, secret)", f))
		}
		return Channel{}, append(problems, `must be an object {"type", "url", "secret"} of strings`)
	}
	ch := Channel{Name: name}
	switch {
	case e.Type == nil:
		problems = append(problems, "type: missing (slack, teams or webhook)")
	case !Type(*e.Type).Valid():
		problems = append(problems, fmt.Sprintf("type: %q is not slack, teams or webhook", *e.Type))
	default:
		ch.Type = Type(*e.Type)
	}
	if e.URL == nil || *e.URL == "" {
		problems = append(problems, "url: missing")
	} else if err := checkURL(*e.URL); err != nil {
		problems = append(problems, "url: "+err.Error())
	} else {
		ch.URL = *e.URL
	}
	switch {
	case ch.Type == Webhook && (e.Secret == nil || *e.Secret == ""):
		problems = append(problems, "secret: missing (webhook channels are signed)")
	case ch.Type == Webhook && len(*e.Secret) < MinSecretLen:
		problems = append(problems, fmt.Sprintf("secret: shorter than %d characters", MinSecretLen))
	case ch.Type == Webhook:
		ch.Secret = *e.Secret
	case ch.Type != "" && e.Secret != nil:
		problems = append(problems, "secret: only webhook channels take one")
	}
	return ch, problems
}

// unknownField returns the field name from encoding/json's unknown-field
// error, which has no type of its own.
func unknownField(err error) (string, bool) {
	f, ok := strings.CutPrefix(err.Error(), "json: unknown field ")
	if !ok {
		return "", false
	}
	return strings.Trim(f, `"`), true
}

// ErrNotHTTPS is a channel URL refused beyond validate.URL's rules.
var ErrNotHTTPS = errors.New("must be https (http only for a loopback address)")

// checkURL takes the shared URL rules (absolute, no user info, no fragment,
// ASCII host) and adds https: a webhook URL and every message posted to it
// are credentials in transit. Plain http is for loopback only, where the
// tests and the local stack run their receivers.
func checkURL(s string) error {
	u, err := validate.URL(s)
	if err != nil {
		return err
	}
	if u.Scheme == "https" || loopback(u.Hostname()) {
		return nil
	}
	return ErrNotHTTPS
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
