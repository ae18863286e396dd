using SharedLvm.Contracts.Conventions;
using SharedLvm.Controller.Catalog;
using SharedLvm.Controller.Volumes;
using SharedLvm.Os.Lvm;

namespace SharedLvm.Tests.Controller.Catalog;

/// <summary>A volume's identity in LV tags: every value encodes into LVM's tag charset and back.</summary>
public class LvTagsTests
{
    [Theory]
    [InlineData("plain")]
    [InlineData("ünïcode = + , / spaces \" ' $(x)")]
    [InlineData("")]
    public void Tag_encoding_round_trips_and_stays_in_lvms_tag_charset(string value)
    {
        var tag = LvTags.Label("key.with-dash", value);
        Assert.Matches("^[A-Za-z0-9_+.=-]+$", tag);
        Assert.True(LvTags.TryParseLabel(tag, out var key, out var decoded));
        Assert.Equal(("key.with-dash", value), (key, decoded));
    }
}
