package apiserver

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// ErrNoCertificates is returned by Dial when ClientConfig.CAFile holds no
// PEM certificate.
var ErrNoCertificates = errors.New("apiserver: no certificates")

// LoadServerTLS loads a PEM certificate chain and its key for the gRPC and
// HTTP listeners. TLS 1.2 is the floor, as for any public endpoint today.
func LoadServerTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("cannot load TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// ClientConfig says how a client reaches a server. The zero value dials in
// plaintext without a token, which suits the default server on 127.0.0.1.
type ClientConfig struct {
	// TLS makes the connection use TLS, verified against the system roots
	// unless CAFile or InsecureSkipVerify say otherwise.
	TLS bool
	// CAFile is a PEM bundle to verify the server's certificate with
	// instead of the system roots (a private CA or a self-signed
	// certificate). Implies TLS.
	CAFile string
	// InsecureSkipVerify accepts any server certificate: the connection is
	// encrypted but the server is not authenticated. Implies TLS.
	InsecureSkipVerify bool
	// Token, when not empty, goes with every call as
	// "authorization: Bearer <Token>".
	Token string
}

// maxRecvMsgSize lifts gRPC's 4 MiB default: a full page of 10,000
// backlinks with long URLs and titles can exceed it.
const maxRecvMsgSize = 64 << 20

// Dial returns a client connection to addr (host:port) configured by cfg.
// Like grpc.NewClient it does no I/O; the first call connects. The caller
// must close it.
func Dial(addr string, cfg ClientConfig) (*grpc.ClientConn, error) {
	secure := cfg.TLS || cfg.CAFile != "" || cfg.InsecureSkipVerify
	opts := []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvMsgSize), grpc.ForceCodecV2(clientCodec))}
	if secure {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("cannot read CA file: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%w in %s", ErrNoCertificates, cfg.CAFile)
			}
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if cfg.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerCreds{token: cfg.Token, secure: secure}))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot make a client for %s: %w", addr, err)
	}
	return conn, nil
}
