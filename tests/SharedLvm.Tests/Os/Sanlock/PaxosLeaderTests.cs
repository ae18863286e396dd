using SharedLvm.Os.Sanlock;

namespace SharedLvm.Tests.Os.Sanlock;

/// <summary>
/// The leader record of a sanlock resource, from sectors captured on a loop device with sanlock 3.8.5
/// (`sanlock client command -r LS:writer:DEV:1048576` holding it, then the command gone).
/// </summary>
public sealed class PaxosLeaderTests
{
    [Fact]
    public void A_held_lease_names_its_owner_and_version()
    {
        var leader = PaxosLeader.Parse(Fixture("leader-held-by-host1-lver1.bin"));
        Assert.Equal(new PaxosLeader(1, 1, 1, "LS", "writer", 0x1120), leader);
        Assert.True(leader.IsHeld);
    }

    [Fact]
    public void A_released_lease_keeps_its_last_owner_and_version_but_is_not_held()
    {
        var leader = PaxosLeader.Parse(Fixture("leader-released-by-host1-lver1.bin"));
        Assert.Equal((1UL, 1UL), (leader.OwnerId, leader.Lver));
        Assert.False(leader.IsHeld);
    }

    [Fact]
    public void An_unformatted_area_is_no_leader()
    {
        Assert.Throws<FormatException>(() => PaxosLeader.Parse(new byte[512]));
        var corrupt = Fixture("leader-held-by-host1-lver1.bin");
        corrupt[0] ^= 0xff;
        Assert.Throws<FormatException>(() => PaxosLeader.Parse(corrupt));
    }

    private static byte[] Fixture(string name) => File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", "sanlock", name));
}
