package conformance

var netconnCases = []testCase{}
