using SharedLvm.Contracts.Conventions;
using SharedLvm.Controller.Catalog;
using SharedLvm.Controller.Volumes;
using SharedLvm.Os.Lvm;

namespace SharedLvm.Tests.Contracts;

/// <summary>Controller-issued ids and the LV names both sides derive from them.</summary>
public class VolumeIdTests
{
    [Fact]
    public void Volume_ids_are_26_base32_characters_and_name_their_lv()
    {
        var ids = Enumerable.Range(0, 1000).Select(_ => VolumeId.New()).ToHashSet();
        Assert.Equal(1000, ids.Count);
        Assert.All(ids, id => Assert.True(VolumeId.IsValid(id), id));
        var one = ids.First();
        Assert.Equal(one, VolumeId.FromLvName(VolumeId.LvName(one)));
        Assert.Null(VolumeId.FromLvName("lv1"));
        Assert.False(VolumeId.IsValid("ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
    }
}
