using SharedLvm.Contracts.Conventions;

namespace SharedLvm.Tests.Contracts;

/// <summary>Device-mapper names of LVs, decoded as both sides of the contract read them.</summary>
public class DmNameTests
{
    [Theory]
    [InlineData("pool1-slvm--aaaa", "pool1/slvm-aaaa")]
    [InlineData("my--vg-my--lv", "my-vg/my-lv")]
    [InlineData("nodash", null)]
    public void Dm_names_map_back_to_vg_and_lv(string dmName, string? vgLv) =>
        Assert.Equal(vgLv, DmName.ToVgLv(dmName));
}
