package kprofile

import (
	"strings"
	"testing"
)

// k and u make kernel and user frames.
func k(sym string) Frame {
	return Frame{Addr: 0xffffffff81000000, Sym: sym, DSO: "[kernel.kallsyms]", Kernel: true}
}
func u(sym string) Frame { return Frame{Addr: 0x401000, Sym: sym, DSO: "/usr/local/bin/merlin"} }

func inDSO(f Frame, dso string) Frame { f.DSO = dso; return f }

// The default rules on stacks that show the walk's edge cases.
func TestDefaultRules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stack []Frame
		want  string
		at    int // the deciding frame
	}{
		{
			name:  "a memcpy called from TCP is a copy",
			stack: []Frame{k("rep_movs_alternative"), k("_copy_from_iter"), k("tcp_sendmsg_locked"), k("tcp_sendmsg"), k("do_syscall_64")},
			want:  "copy",
		},
		{
			name:  "a spin lock inside TCP is TCP/IP",
			stack: []Frame{k("_raw_spin_lock"), k("tcp_v4_rcv"), k("ip_local_deliver_finish"), k("net_rx_action"), k("handle_softirqs")},
			want:  "tcpip", at: 1,
		},
		{
			name:  "TCP inside a softirq is TCP/IP; the softirq's own code is softirq",
			stack: []Frame{k("process_backlog"), k("__napi_poll"), k("net_rx_action"), k("handle_softirqs"), k("do_softirq"), k("__local_bh_enable_ip"), k("__dev_queue_xmit")},
			want:  "softirq",
		},
		{
			name:  "a wake-up from the receive path is the scheduler's",
			stack: []Frame{k("_raw_spin_unlock_irqrestore"), k("try_to_wake_up"), k("__wake_up_common"), k("sock_def_readable"), k("tcp_data_queue")},
			want:  "sched", at: 1,
		},
		{
			name:  "epoll's wake-up callback is epoll's, under the scheduler's wake-up",
			stack: []Frame{k("_raw_spin_lock_irqsave"), k("ep_poll_callback"), k("__wake_up_common"), k("sock_def_readable")},
			want:  "epoll", at: 1,
		},
		{
			name:  "compiler clone suffixes are ignored",
			stack: []Frame{k("finish_task_switch.isra.0"), k("__schedule"), k("schedule")},
			want:  "sched",
		},
		{
			name:  "the syscall entry as the leaf is syscall entry/exit",
			stack: []Frame{k("entry_SYSCALL_64_after_hwframe"), u("internal/runtime/syscall/linux.Syscall6")},
			want:  "syscall",
		},
		{
			name:  "the syscall entry as a caller decides nothing: unmatched kernel work is other",
			stack: []Frame{k("__x64_sys_getpid"), k("do_syscall_64"), k("entry_SYSCALL_64_after_hwframe"), u("syscall.Syscall"), u("github.com/merlin-net/merlin/sockets.(*conn).read")},
			want:  Other, at: -1,
		},
		{
			name:  "a paravirtual guest's interrupts coming back on in the syscall entry: the entry's time",
			stack: []Frame{k("pvm_irq_enable"), k("__raw_callee_save_pvm_irq_enable"), k("do_syscall_64"), k("entry_SYSCALL_64_after_hwframe"), u("internal/runtime/syscall/linux.Syscall6")},
			want:  "syscall", at: 2,
		},
		{
			name:  "a paravirtual guest's interrupts coming back on at a lock's release: its caller's",
			stack: []Frame{k("pvm_irq_enable"), k("__raw_callee_save_pvm_irq_enable"), k("_raw_spin_unlock_irqrestore"), k("sock_def_readable"), k("tcp_rcv_established")},
			want:  "tcpip", at: 3,
		},
		{
			name:  "a paravirtual guest's interrupts coming back on after a switch: the scheduler's",
			stack: []Frame{k("pvm_irq_enable"), k("__raw_callee_save_pvm_irq_enable"), k("finish_task_switch.isra.0"), k("__schedule"), k("schedule")},
			want:  "sched", at: 2,
		},
		{
			name:  "a kernel sample never takes its user frames' category",
			stack: []Frame{k("some_driver_fn"), u("github.com/merlin-net/merlin/uring.(*ring).enter")},
			want:  Other, at: -1,
		},
		{
			name:  "a page fault stops the walk before the copy it interrupted",
			stack: []Frame{k("clear_page_erms"), k("do_anonymous_page"), k("handle_mm_fault"), k("exc_page_fault"), k("asm_exc_page_fault"), k("rep_movs_alternative"), k("_copy_to_iter")},
			want:  Other, at: 3,
		},
		{
			name:  "the kernel's io_uring",
			stack: []Frame{k("io_recv"), k("io_issue_sqe"), k("io_submit_sqes"), k("__do_sys_io_uring_enter")},
			want:  "io_uring",
		},
		{
			name:  "io_schedule is the scheduler's, not io_uring's",
			stack: []Frame{k("io_schedule"), k("folio_wait_bit")},
			want:  "sched",
		},
		{
			name:  "perf's tracepoint, inside the syscall entry",
			stack: []Frame{k("perf_tp_event"), k("perf_trace_sys_enter"), k("syscall_trace_enter"), k("do_syscall_64")},
			want:  "perf",
		},
		{
			name:  "a user frame is not matched by a kernel rule of its name",
			stack: []Frame{u("tcp_sendmsg"), u("main")},
			want:  Other, at: -1,
		},
		{
			name:  "liburing in user space is the transport",
			stack: []Frame{inDSO(u("io_uring_submit"), "/usr/lib/x86_64-linux-gnu/liburing.so.2.5"), inDSO(u("main"), "/bin/srv")},
			want:  "transport",
		},
		{
			name:  "Go's memmove under the transport is a copy",
			stack: []Frame{u("runtime.memmove"), u("github.com/merlin-net/merlin/uring.(*conn).Write"), u("runtime.goexit.abi0")},
			want:  "copy",
		},
		{
			name:  "the allocator under the app is the runtime's",
			stack: []Frame{u("runtime.mallocgc"), u("github.com/merlin-net/merlin/apps/echo.(*Handler).OnData"), u("runtime.goexit.abi0")},
			want:  "runtime",
		},
		{
			name:  "the race detector is the runtime's",
			stack: []Frame{u("__tsan::MetaMap::FreeRange"), u("[unknown]")},
			want:  "runtime",
		},
		{
			name:  "a handler's own code is the app's, a transport it calls the transport's",
			stack: []Frame{u("main.(*echoServer).OnTraffic"), u("github.com/panjf2000/gnet/v2.(*conn).processIO")},
			want:  "app",
		},
		{
			name:  "sync is nobody's: its caller decides",
			stack: []Frame{u("sync.(*Mutex).Lock"), u("github.com/panjf2000/gnet/v2.(*eventloop).run")},
			want:  "transport", at: 1,
		},
		{
			name:  "goexit at the root of an unmatched stack decides nothing",
			stack: []Frame{u("example.com/unknown.F"), u("runtime.goexit.abi0")},
			want:  Other, at: -1,
		},
		{
			name:  "the user half of a system call",
			stack: []Frame{u("internal/runtime/syscall/linux.Syscall6"), u("syscall.Syscall6"), u("github.com/merlin-net/merlin/uring.(*ring).enter")},
			want:  "syscall",
		},
		{
			name:  "a C floor's own code, by its DSO",
			stack: []Frame{inDSO(u("on_readable"), "/root/.cache/merlin/peers/peer-cfloor-epoll"), inDSO(u("main"), "/root/.cache/merlin/peers/peer-cfloor-epoll")},
			want:  "transport",
		},
		{
			name:  "the same names elsewhere are nobody's",
			stack: []Frame{inDSO(u("on_readable"), "/usr/bin/other"), inDSO(u("main"), "/usr/bin/other")},
			want:  Other, at: -1,
		},
		{
			name:  "an empty stack",
			stack: nil,
			want:  Other, at: -1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, at := DefaultRules().Category(tc.stack)
			if got != tc.want || at != tc.at {
				t.Errorf("Category = %q at frame %d, want %q at frame %d", got, at, tc.want, tc.at)
			}
		})
	}
}

// Every category of the rules is one the tables show, and every rule
// line of rules.txt parses.
func TestRulesFile(t *testing.T) {
	rs := DefaultRules()
	if len(rs.Rules()) < 100 {
		t.Fatalf("rules.txt has %d rules", len(rs.Rules()))
	}
	used := map[string]bool{}
	for _, r := range rs.Rules() {
		used[r.Category] = true
	}
	for _, c := range Categories {
		if c.ID != Other && !used[c.ID] {
			t.Errorf("no rule gives category %s", c.ID)
		}
		if CategoryName(c.ID) != c.Name {
			t.Errorf("CategoryName(%s) = %q", c.ID, CategoryName(c.ID))
		}
	}
}

func TestParseRules(t *testing.T) {
	rs, err := ParseRules(`
# a comment
leaf kernel syscall do_syscall_64   # trailing comment
kernel pass   do_syscall_64
kernel tcpip  tcp_* *_sock
user   transport *  in *cfloor*
`)
	if err != nil {
		t.Fatal(err)
	}
	got := rs.Rules()
	want := []Rule{
		{Kernel: true, Leaf: true, Category: "syscall", Pattern: "do_syscall_64", Line: 3},
		{Kernel: true, Category: "pass", Pattern: "do_syscall_64", Line: 4},
		{Kernel: true, Category: "tcpip", Pattern: "tcp_*", Line: 5},
		{Kernel: true, Category: "tcpip", Pattern: "*_sock", Line: 5},
		{Category: "transport", Pattern: "*", DSO: "*cfloor*", Line: 6},
	}
	if len(got) != len(want) {
		t.Fatalf("%d rules, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("rule %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// The order decides: the leaf rule, then pass for callers.
	for _, tc := range []struct {
		stack []Frame
		want  string
	}{
		{[]Frame{k("do_syscall_64")}, "syscall"},
		{[]Frame{k("x"), k("do_syscall_64")}, Other},
		{[]Frame{k("x"), k("release_sock"), k("do_syscall_64")}, "tcpip"},
	} {
		if got, _ := rs.Category(tc.stack); got != tc.want {
			t.Errorf("Category(%v) = %s, want %s", tc.stack, got, tc.want)
		}
	}

	for _, bad := range []string{
		"kernel",
		"kernel tcpip",
		"kernal tcpip tcp_*",
		"kernel nonsense tcp_*",
		"user transport in foo",
		"user transport a in b in c",
		"leaf user",
	} {
		if _, err := ParseRules(bad); err == nil {
			t.Errorf("ParseRules(%q): no error", bad)
		} else if !strings.Contains(err.Error(), "line 1") {
			t.Errorf("ParseRules(%q): %v, want the line named", bad, err)
		}
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"tcp_*", "tcp_sendmsg", true},
		{"tcp_*", "tcp_", true},
		{"tcp_*", "__tcp_push", false},
		{"*epoll*", "__x64_sys_epoll_pwait", true},
		{"*epoll*", "ep_poll", false},
		{"net.*", "net.(*conn).Read", true},
		{"net/*", "net/http.(*conn).serve", true},
		{"github.com/merlin-net/merlin/apps/*", "github.com/merlin-net/merlin/apps/echo.(*Handler).OnData", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "acb", false},
		{"a*a", "a", false},
		{"*", "", true},
		{"exact", "exact", true},
		{"exact", "exactly", false},
	} {
		if got := glob(tc.pattern, tc.s); got != tc.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}
