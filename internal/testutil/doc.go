// Package testutil holds helpers shared by merlin's tests: a leak check of
// goroutines and file descriptors against a baseline, and loopback
// addresses for every network. It is never part of the contract.
package testutil
