// The Pulumi Kubernetes provider, built from github.com/pulumi/pulumi-kubernetes/provider/v4.
//
// Why not its own cmd/pulumi-resource-kubernetes: that main embeds schema-embed.json and
// terraform-mapping-embed.json, which the provider's release build generates and the module
// does not hold (go build: "pattern schema-embed.json: no matching files found"), and go build
// -overlay may not add files beneath GOMODCACHE. So this main serves the same provider with the
// same two files, which build.sh generates from the module's schema.json and
// terraform-mapping.json (the schema with its version set, both minified) and hands to the
// compiler with -overlay; nothing generated is written into the repository.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
