using SharedLvm.Os.Reservations;

namespace SharedLvm.Tests.Os.Reservations;

public class ReservationKeyTests
{
    [Fact]
    public void A_node_key_is_SLVM_and_the_node_number_printed_as_tools_print_it()
    {
        var key = ReservationKey.ForNodeNumber(3);
        Assert.Equal("0x534c564d00000003", key.ToString());
        Assert.True(key.IsSharedLvm);
        Assert.Equal(3U, key.NodeNumber);
        Assert.Equal(key, ReservationKey.Parse("0x534C564D00000003"));
        Assert.Equal(key, ReservationKey.Parse("534c564d00000003"));
    }

    [Fact]
    public void Zero_is_not_a_node_number_and_foreign_keys_are_recognised()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ReservationKey.ForNodeNumber(0));
        var foreign = ReservationKey.Parse("0x123abc");
        Assert.False(foreign.IsSharedLvm);
        Assert.Equal(0U, foreign.NodeNumber);
        Assert.Throws<FormatException>(() => ReservationKey.Parse("node-a"));
    }
}
