package node

import (
	"maps"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	lgv1 "github.com/linkgraph/linkgraph/api/linkgraph/v1"
)

// linkGroups gathers the link batches a shard node publishes while it
// records a batch of pages, a group per target shard, so that each shard
// gets one LINKS message (the first batch, the others in its more field)
// instead of one a page: JetStream's cost is mostly per message. A group is
// published early when one more batch would take it past limit bytes (the
// server's max_payload less headroom); a batch larger than that on its own
// goes alone, as it always did.
type linkGroups struct {
	limit  int
	groups map[int]*linkGroup
}

type linkGroup struct {
	first *lgv1.LinkBatch
	size  int // encoded size of first, more included
}

// moreField is the field number of LinkBatch.more.
const moreField = 9

// add puts lb in the group of shard, first publishing that group if lb
// would not fit in it.
func (g *linkGroups) add(shard int, lb *lgv1.LinkBatch, publish func(shard int, data []byte) error) error {
	n := proto.Size(lb)
	grown := protowire.SizeTag(moreField) + protowire.SizeBytes(n)
	grp := g.groups[shard]
	if grp != nil && grp.size+grown > g.limit {
		if err := g.publish(shard, publish); err != nil {
			return err
		}
		grp = nil
	}
	if grp == nil {
		if g.groups == nil {
			g.groups = make(map[int]*linkGroup)
		}
		g.groups[shard] = &linkGroup{first: lb, size: n}
		return nil
	}
	grp.first.More = append(grp.first.More, lb)
	grp.size += grown
	return nil
}

// flush publishes every group, in shard order.
func (g *linkGroups) flush(publish func(shard int, data []byte) error) error {
	for _, shard := range slices.Sorted(maps.Keys(g.groups)) {
		if err := g.publish(shard, publish); err != nil {
			return err
		}
	}
	return nil
}

func (g *linkGroups) publish(shard int, publish func(shard int, data []byte) error) error {
	grp := g.groups[shard]
	delete(g.groups, shard)
	data, err := proto.Marshal(grp.first)
	if err != nil {
		return err
	}
	return publish(shard, data)
}
