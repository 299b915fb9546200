// Package linkgraphv1 is the generated Go code for the linkgraph.v1 protobuf
// package: the public gRPC contract (linkgraph.proto) and the messages the
// roles exchange over JetStream (wire.proto).
package linkgraphv1

//go:generate protoc -I ../.. -I /usr/include --go_out=../.. --go_opt=paths=source_relative --go-grpc_out=../.. --go-grpc_opt=paths=source_relative linkgraph/v1/linkgraph.proto linkgraph/v1/wire.proto
