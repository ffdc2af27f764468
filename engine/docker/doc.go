// Package docker runs Clank's containers on the Docker engine: it implements
// engine.Runtime with the moby client, plus the image chores around it (build,
// tag, push) that the demo and the tests need.
//
// Containers are published on 127.0.0.1 with an ephemeral host port and never
// restart on their own: the engine decides their fate. Errors that mean the
// engine cannot be reached at all are recognisable with IsUnreachable.
package docker
