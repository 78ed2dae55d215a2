package channel

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Credentials that must never appear in an error or a log line.
const (
	slackURL  = "https://hooks.slack.com/services/T0000/B0000/slackPathSecret"
	teamsURL  = "https://prod-00.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig=teamsQuerySecret"
	hookURL   = "https://ci.example.com/hooks/approvals"
	hookToken = "webhookSharedSecret0123"
)

var credentials = []string{"slackPathSecret", "teamsQuerySecret", hookToken, "ci.example.com/hooks"}

func noCredentials(t *testing.T, what, s string) {
	t.Helper()
	for _, c := range credentials {
		if strings.Contains(s, c) {
			t.Errorf("%s shows a credential (%s): %s", what, c, s)
		}
	}
}

func TestParse(t *testing.T) {
	doc := fmt.Sprintf(`{
		"ops": {"type": "slack", "url": %q},
		"release.team": {"type": "teams", "url": %q},
		"ci_1": {"type": "webhook", "url": %q, "secret": %q},
		"local": {"type": "webhook", "url": "http://127.0.0.1:8081/hook", "secret": %q},
		"local6": {"type": "slack", "url": "http://[::1]:8081/hook"},
		"localhost": {"type": "teams", "url": "http://localhost:8081/hook"}
	}`, slackURL, teamsURL, hookURL, hookToken, hookToken)
	cfg, err := Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ci_1", "local", "local6", "localhost", "ops", "release.team"}, cfg.Names()); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
	got, ok := cfg.Lookup("ci_1")
	if want := (Channel{Name: "ci_1", Type: Webhook, URL: hookURL, Secret: hookToken}); !ok || got != want {
		t.Errorf("Lookup(ci_1) = %#v, %t", got, ok)
	}
	if ch, _ := cfg.Lookup("release.team"); ch.URL != teamsURL || ch.Type != Teams {
		t.Errorf("teams channel not kept as written (type %s)", ch.Type)
	}

	// From a file, as the template's Secrets Manager injection can be.
	path := filepath.Join(t.TempDir(), "channels.json")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile, err := Parse("@" + path)
	if err != nil {
		t.Fatal(err)
	}
	if fromFile.Len() != cfg.Len() {
		t.Errorf("from a file: %d channels, want %d", fromFile.Len(), cfg.Len())
	}

	for _, empty := range []string{"", "  "} {
		if c, err := Parse(empty); err != nil || c.Len() != 0 {
			t.Errorf("Parse(%q) = %d channels, %v; want none", empty, c.Len(), err)
		}
	}
	if c, err := Parse("{}"); err != nil || c.Len() != 0 {
		t.Errorf("Parse({}) = %d channels, %v", c.Len(), err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // every one must be in the error
	}{
		{"not JSON", `ops=` + slackURL, []string{"not a JSON object"}},
		{"array", `[{"type": "slack"}]`, []string{"not a JSON object"}},
		{"trailing", `{"ops": {"type": "slack", "url": "` + slackURL + `"}} {}`, []string{"not a JSON object"}},
		{"unknown type", `{"ops": {"type": "discord", "url": "` + slackURL + `"}}`, []string{`channel "ops": type: "discord" is not slack, teams or webhook`}},
		{"no type", `{"ops": {"url": "` + slackURL + `"}}`, []string{`channel "ops": type: missing`}},
		{"no url", `{"ops": {"type": "slack"}}`, []string{`channel "ops": url: missing`}},
		{"plain http", `{"ops": {"type": "slack", "url": "http://hooks.slack.com/services/T0000/B0000/slackPathSecret"}}`, []string{`channel "ops": url: must be https`}},
		{"relative", `{"ops": {"type": "slack", "url": "/services/slackPathSecret"}}`, []string{`channel "ops": url: is not an absolute http(s) URL`}},
		{"userinfo", `{"ops": {"type": "slack", "url": "https://u:slackPathSecret@hooks.slack.com/x"}}`, []string{`channel "ops": url: has user info`}},
		{"fragment", `{"ops": {"type": "slack", "url": "https://hooks.slack.com/x#slackPathSecret"}}`, []string{`channel "ops": url: has a fragment`}},
		{"non-ASCII host", `{"ops": {"type": "slack", "url": "https://hööks.example/slackPathSecret"}}`, []string{`channel "ops": url: has a non-ASCII host`}},
		{"url not a string", `{"ops": {"type": "slack", "url": 12}}`, []string{`channel "ops": must be an object`}},
		{"unknown field", `{"ops": {"type": "slack", "url": "` + slackURL + `", "token": "x"}}`, []string{`channel "ops": unknown field "token"`}},
		{"webhook without secret", `{"ci": {"type": "webhook", "url": "` + hookURL + `"}}`, []string{`channel "ci": secret: missing`}},
		{"short secret", `{"ci": {"type": "webhook", "url": "` + hookURL + `", "secret": "webhookShort"}}`, []string{`channel "ci": secret: shorter than 16`}},
		{"secret on slack", `{"ops": {"type": "slack", "url": "` + slackURL + `", "secret": "` + hookToken + `"}}`, []string{`channel "ops": secret: only webhook channels`}},
		{"bad name", `{"ops:1": {"type": "slack", "url": "` + slackURL + `"}}`, []string{`channel "ops:1": name must be`}},
		{"empty name", `{"": {"type": "slack", "url": "` + slackURL + `"}}`, []string{`channel "": name must be`}},
		{"twice", `{"ops": {"type": "slack", "url": "` + slackURL + `"}, "ops": {"type": "teams", "url": "` + teamsURL + `"}}`, []string{`channel "ops": given twice`}},
		{"every problem", `{"a": {"type": "slack"}, "b": {"type": "webhook", "url": "` + hookURL + `"}}`,
			[]string{`channel "a": url: missing`, `channel "b": secret: missing`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.doc)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			noCredentials(t, "error", err.Error())
		})
	}
	if _, err := Parse("@" + filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), "read channels file") {
		t.Errorf("missing file: %v", err)
	}
}

// Whatever way a channel or the configuration is printed or logged, its
// URL and secret stay out.
func TestRedaction(t *testing.T) {
	cfg, err := Parse(fmt.Sprintf(`{"ops": {"type": "slack", "url": %q}, "teams": {"type": "teams", "url": %q}, "ci": {"type": "webhook", "url": %q, "secret": %q}}`,
		slackURL, teamsURL, hookURL, hookToken))
	if err != nil {
		t.Fatal(err)
	}
	ci, _ := cfg.Lookup("ci")
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	log.Info("channels", "config", cfg, "channel", ci)
	log.Info("channel", "channel", &ci)
	printed := []string{
		fmt.Sprint(cfg), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg),
		fmt.Sprint(ci), fmt.Sprintf("%v %+v %#v %s", ci, ci, ci, ci), fmt.Sprintf("%v", []Channel{ci}),
		logs.String(),
	}
	for _, p := range printed {
		noCredentials(t, "printed", p)
	}
	if want := `ci (webhook), ops (slack), teams (teams)`; cfg.String() != want {
		t.Errorf("String() = %q, want %q", cfg.String(), want)
	}
	if !strings.Contains(logs.String(), `"channel":{"name":"ci","type":"webhook"}`) {
		t.Errorf("log does not name the channel: %s", logs.String())
	}
}
