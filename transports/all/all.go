// Package all registers every merlin transport. Import it for its side
// effect where a program chooses transports by spec:
//
//	import _ "github.com/merlin-net/merlin/transports/all"
package all

import (
	_ "github.com/merlin-net/merlin/libuvlike" // registers "libuvlike"
	_ "github.com/merlin-net/merlin/sockets"   // registers "sockets"
	_ "github.com/merlin-net/merlin/uring"     // registers "uring"
)
