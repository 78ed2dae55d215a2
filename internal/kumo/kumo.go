// Package kumo starts the kumo AWS emulator (SQS, Step Functions, SES v2)
// and points aws-sdk-go-v2 clients at it. The tests and the local stack
// (approvals-dev dev) use it.
//
// kumo must listen on port 4566: its Step Functions -> SQS integration calls
// localhost:4566. The binary is bin/kumo, built from the tools module (which
// keeps the emulator out of the service's own go.mod) when missing; KUMO_BIN
// names another one.
package kumo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/sfn-approvals/sfn-approvals/internal/awsx"
)

// Port is the only port kumo's Step Functions integration works on.
const Port = 4566

// Endpoint is kumo's URL.
var Endpoint = fmt.Sprintf("http://127.0.0.1:%d", Port)

// Region is the region tests use.
const Region = "us-east-1"

// Env lists the environment variables that point an SDK-based process (the
// worker or redeemer binaries) at kumo.
func Env() []string {
	return []string{
		"AWS_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_ENDPOINT_URL=" + Endpoint,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Config returns an SDK configuration for kumo. Its HTTP client is the one
// the services use (awsx.HTTPClient), so the tests' own clients cannot lose
// a fast answer the way the SDK's bare client can.
func Config() aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(Endpoint),
		HTTPClient:   awsx.HTTPClient{SDK: awshttp.NewBuildableClient()},
	}
}

// RepoRoot finds the main module's directory.
func RepoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the module")
	}
	return filepath.Dir(mod), nil
}

// Binary returns the kumo binary, building it from the tools module when
// it is missing.
func Binary(root string) (string, error) {
	if p := os.Getenv("KUMO_BIN"); p != "" {
		return p, nil
	}
	bin := filepath.Join(root, "bin", "kumo")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	fmt.Fprintln(os.Stderr, "building the kumo emulator (first run only; several minutes on a cold cache)")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/sivchari/kumo/cmd/kumo")
	cmd.Dir = filepath.Join(root, "tools")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build kumo: %w", err)
	}
	return bin, nil
}

// Start starts kumo on Port and waits until it answers. It fails if the port
// is already taken, rather than testing against an emulator of unknown state.
func Start(root string, logs io.Writer) (stop func(), err error) {
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", Port), 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("port %d is already in use; stop whatever listens there (an old kumo?) and run again", Port)
	}
	bin, err := Binary(root)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "KUMO_HOST=127.0.0.1", fmt.Sprintf("KUMO_PORT=%d", Port), "KUMO_LOG_LEVEL=warn")
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start kumo: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop = func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("kumo exited at start: %v", err)
		default:
		}
		resp, err := http.Get(Endpoint + "/kumo/ses/v2/sent-emails")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return stop, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return nil, errors.New("kumo did not answer within 30s")
}

// SentEmail is one email in kumo's outbox.
type SentEmail struct {
	MessageID        string `json:"MessageId"`
	FromEmailAddress string `json:"FromEmailAddress"`
	Destination      struct {
		ToAddresses  []string `json:"ToAddresses"`
		CcAddresses  []string `json:"CcAddresses"`
		BccAddresses []string `json:"BccAddresses"`
	} `json:"Destination"`
	Subject              string    `json:"Subject"`
	Body                 string    `json:"Body"`
	HTMLBody             string    `json:"HTMLBody"`
	ConfigurationSetName string    `json:"ConfigurationSetName"`
	SentAt               time.Time `json:"SentAt"`
}

// SentEmails reads kumo's outbox (every email since it started).
func SentEmails(ctx context.Context) ([]SentEmail, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, Endpoint+"/kumo/ses/v2/sent-emails", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read kumo outbox: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read kumo outbox: %s", resp.Status)
	}
	var out struct {
		SentEmails []SentEmail `json:"SentEmails"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("read kumo outbox: %w", err)
	}
	return out.SentEmails, nil
}

// Lock takes the machine-wide lock on the emulator's port, so that test
// packages, benchmarks and soak runs that start their own kumo run one after
// another instead of fighting over port 4566. The port belongs to the machine,
// not to one checkout, so the lock file lives in the system's temporary
// directory: two clones of the repository wait for each other too.
func Lock() (unlock func(), err error) {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("sfn-approvals-kumo-%d.lock", Port))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// LockUnless is Lock for a run that starts its own emulator. When running
// is true the emulator is up already, under its starter's lock (a test's),
// so nothing is taken and unlock does nothing.
func LockUnless(running bool) (unlock func(), err error) {
	if running {
		return func() {}, nil
	}
	return Lock()
}
