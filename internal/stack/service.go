package stack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Service is a worker or redeemer process started from its binary, in a
// process group of its own that dies with this process.
type Service struct {
	Name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error // cmd.Wait's, once done is closed
}

// StartService runs bin with only env (plus PATH and HOME, so nothing from
// the caller's shell, such as real AWS credentials, leaks in), its output
// going to log, and returns once /healthz on adminAddr answers 200. The
// service owns log from then on and closes it when the process has exited.
// If the service does not become healthy it is killed.
func StartService(ctx context.Context, bin string, log *os.File, adminAddr string, env []string) (*Service, error) {
	s := &Service{Name: filepath.Base(bin), log: log, done: make(chan struct{})}
	s.cmd = exec.Command(bin)
	s.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		log.Close()
		close(s.done)
	}()

	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return nil, fmt.Errorf("%s exited at start (%v); its log: %s\n%s", s.Name, s.err, log.Name(), tail(log.Name()))
		case <-ctx.Done():
			s.Kill()
			return nil, ctx.Err()
		default:
		}
		if resp, err := http.Get("http://" + adminAddr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Kill()
	return nil, fmt.Errorf("%s did not become healthy on %s within 20s; its log: %s", s.Name, adminAddr, log.Name())
}

// Pid is the service's process id.
func (s *Service) Pid() int { return s.cmd.Process.Pid }

// Signal sends sig to the service's process.
func (s *Service) Signal(sig os.Signal) error { return s.cmd.Process.Signal(sig) }

// Done is closed once the process has exited; Err then says how.
func (s *Service) Done() <-chan struct{} { return s.done }

// Err is the process's exit error (nil for a clean exit); call it after Done.
func (s *Service) Err() error { return s.err }

// Stop sends SIGTERM to the service's process group and waits for it to
// exit, killing it after timeout. The process state carries its rusage; the
// error is the exit error (an *exec.ExitError for a non-zero exit or a
// signal) or the missed timeout. Stopping an exited service only reports.
func (s *Service) Stop(timeout time.Duration) (*os.ProcessState, error) {
	_ = syscall.Kill(-s.Pid(), syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(timeout):
		s.Kill()
		return nil, fmt.Errorf("%s did not stop within %s of SIGTERM; killed", s.Name, timeout)
	}
	if s.err != nil {
		return s.cmd.ProcessState, fmt.Errorf("%s exited with %w; its log: %s", s.Name, s.err, s.log.Name())
	}
	return s.cmd.ProcessState, nil
}

// Kill sends SIGKILL to the service's process group and waits for the exit.
func (s *Service) Kill() {
	_ = syscall.Kill(-s.Pid(), syscall.SIGKILL)
	<-s.done
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
