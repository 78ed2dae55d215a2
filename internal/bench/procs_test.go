package bench

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The worker's peak memory is read from /proc while it runs, not from its
// ru_maxrss at exit: Linux starts a child's ru_maxrss at the parent's
// resident size when the child execs, so a small child of a large parent
// reports the parent's size.
func TestPeakRSSIsTheChildsOwn(t *testing.T) {
	const parent = 96 << 20
	big := make([]byte, parent)
	for i := range big {
		big[i] = byte(i)
	}
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	// Until the exec, the child still shares this process's memory.
	deadline := time.Now().Add(5 * time.Second)
	for {
		comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if err == nil && strings.TrimSpace(string(comm)) == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child never became sleep: %q, %v", comm, err)
		}
		time.Sleep(time.Millisecond)
	}
	got, err := peakRSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	if got <= 0 || got >= parent/4 {
		t.Errorf("peakRSS of sleep = %d bytes; want its own few MB, not this process's %d", got, parent)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		t.Logf("sleep: VmHWM %d KiB, ru_maxrss at exit %d KiB (parent holds %d KiB)", got>>10, ru.Maxrss, parent>>10)
	}
	_ = big[len(big)-1]
}
