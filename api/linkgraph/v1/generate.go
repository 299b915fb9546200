// Package linkgraphv1 is the generated Go code for the linkgraph.v1 protobuf
// package: the public gRPC contract (linkgraph.proto), its HTTP/JSON mirror
// for grpc-gateway (routes in linkgraph_gateway.yaml) and the messages the
// roles exchange over JetStream (wire.proto). linkgraph_vtproto.pb.go adds
// reflection-free marshalling of the contract's messages
// (planetscale/vtprotobuf), which linkgraph's gRPC codec uses.
package linkgraphv1

//go:generate protoc -I ../.. -I /usr/include --go_out=../.. --go_opt=paths=source_relative --go-grpc_out=../.. --go-grpc_opt=paths=source_relative linkgraph/v1/linkgraph.proto linkgraph/v1/wire.proto
//go:generate protoc -I ../.. -I /usr/include --go-vtproto_out=../.. --go-vtproto_opt=paths=source_relative --go-vtproto_opt=features=marshal+unmarshal+unmarshal_unsafe+size linkgraph/v1/linkgraph.proto
//go:generate protoc -I ../.. -I /usr/include --grpc-gateway_out=../.. --grpc-gateway_opt=paths=source_relative --grpc-gateway_opt=grpc_api_configuration=linkgraph_gateway.yaml linkgraph/v1/linkgraph.proto
