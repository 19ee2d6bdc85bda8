// Package kprofile attributes a process's CPU time, sampled by perf, to
// named categories: TCP/IP, copies, softirq, system call entry and exit,
// epoll, io_uring, the scheduler, the Go runtime, the transport, the
// application, perf's own cost, and other.
//
// A Scanner reads `perf script` output (ScriptFields) sample by sample;
// Rules, an ordered list of symbol patterns read from rules.txt, gives each
// sample the category of the first frame a rule matches, walking the stack
// from the leaf up; a Profile sums the samples of one process by category.
// Nothing here runs perf: package bench records and scripts, and hands
// the script to Attribute.
//
//	p, err := kprofile.Attribute(script, pid, kprofile.DefaultRules())
//	tcp := p.Ns["tcpip"] // nanoseconds sampled in the network stack
package kprofile
