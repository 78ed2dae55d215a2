package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sfn-approvals/sfn-approvals/internal/stack"
)

// startService starts a worker or redeemer for a phase, its log at
// logPath, and waits for /healthz on adminAddr.
func startService(ctx context.Context, bin, logPath, adminAddr string, env []string) (*stack.Service, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	return stack.StartService(ctx, bin, lf, adminAddr, env)
}

// usage is a process's CPU time and peak resident memory.
type usage struct {
	CPU    time.Duration
	MaxRSS int64 // bytes
}

func rusageOf(ps *os.ProcessState) usage {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return usage{CPU: ps.UserTime() + ps.SystemTime()}
	}
	// Linux reports ru_maxrss in KiB.
	return usage{CPU: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), MaxRSS: ru.Maxrss << 10}
}

// peakRSS reads a live process's peak resident memory (VmHWM) from /proc,
// in bytes. Unlike ru_maxrss at exit, it counts only the process's own
// memory: Linux starts a child's ru_maxrss at its parent's resident size
// when the child execs (Go's exec shares the parent's memory until then),
// so a worker started by a large benchmark process would report that
// process's size if it used less itself.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse /proc/%d/status: %q", pid, line)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// procCPU reads a live process's user+system CPU time from /proc.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields count from after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	// utime and stime are fields 14 and 15 of the whole line.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return time.Duration(ut+st) * clockTick, nil
}

// selfCPU is this process's CPU time: the benchmark's clients, load
// generator and fault proxy.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// childPID finds a child of this process by command name (the emulator,
// started by package kumo, which does not hand out its pid); 0 if none.
func childPID(comm string) int {
	ents, _ := os.ReadDir("/proc")
	me := strconv.Itoa(os.Getpid())
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+1:])
		if s[open+1:end] == comm && len(f) > 1 && f[1] == me {
			return pid
		}
	}
	return 0
}

// cpuMeter samples the CPU time of the processes on the machine that take
// part in a phase, to show where the two cores went.
type cpuMeter struct {
	start time.Time
	pids  map[string]int
	base  map[string]time.Duration
}

func newCPUMeter(pids map[string]int) *cpuMeter {
	m := &cpuMeter{start: time.Now(), pids: pids, base: map[string]time.Duration{}}
	for name, pid := range pids {
		m.base[name], _ = procCPU(pid)
	}
	m.base["bench"] = selfCPU()
	return m
}

// shares returns each process's CPU use since the meter started, in cores
// (1.0 is one core busy for the whole time).
func (m *cpuMeter) shares() map[string]float64 {
	wall := time.Since(m.start).Seconds()
	out := map[string]float64{}
	for name, pid := range m.pids {
		if c, err := procCPU(pid); err == nil {
			out[name] = (c - m.base[name]).Seconds() / wall
		}
	}
	out["bench"] = (selfCPU() - m.base["bench"]).Seconds() / wall
	return out
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
