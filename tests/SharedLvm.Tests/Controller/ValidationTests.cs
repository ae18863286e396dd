using SharedLvm.Controller;

namespace SharedLvm.Tests.Controller;

/// <summary>Every API field's check: the contract's patterns hold exactly, and a refusal names the field.</summary>
public class ValidationTests
{
    [Theory]
    [InlineData("vm-42-root", true)]
    [InlineData("a", true)]
    [InlineData("bb-vol\n", false)]
    [InlineData("bb-vol\r", false)]
    [InlineData("-leading-dash", false)]
    [InlineData("has space", false)]
    [InlineData("", false)]
    public void Volume_names_match_exactly(string name, bool valid) =>
        Assert.Equal(valid, Accepts(() => Validation.VolumeName("name", name)));

    [Theory]
    [InlineData("san1", true)]
    [InlineData("bbpool\n", false)]
    [InlineData("..", false)]
    [InlineData("p+1", true)]
    public void Pool_names_match_exactly(string name, bool valid) =>
        Assert.Equal(valid, Accepts(() => Validation.PoolName("pool", name)));

    [Theory]
    [InlineData("node-a", true)]
    [InlineData("node-a\n", false)]
    [InlineData("Node-A", false)]
    [InlineData("node-", false)]
    public void Node_names_match_exactly(string name, bool valid) =>
        Assert.Equal(valid, Accepts(() => Validation.NodeName("node", name)));

    [Theory]
    [InlineData("35000c500a0000001", true)]
    [InlineData("35000c500a0000001\n", false)]
    [InlineData("../etc", false)]
    public void Wwids_are_hex(string wwid, bool valid) =>
        Assert.Equal(valid, Accepts(() => Validation.Wwid("wwid", wwid)));

    [Fact]
    public void Labels_are_bounded_and_keys_lowercase()
    {
        Assert.True(Accepts(() => Validation.Labels("labels", new Dictionary<string, string> { ["tenant"] = "acme corp (ü)" })));
        Assert.False(Accepts(() => Validation.Labels("labels", new Dictionary<string, string> { ["Tenant"] = "x" })));
        Assert.False(Accepts(() => Validation.Labels("labels", new Dictionary<string, string> { ["k"] = new string('v', 300) })));
        Assert.False(Accepts(() => Validation.Labels("labels", Enumerable.Range(0, 33).ToDictionary(i => "k" + i, _ => "v"))));
        Assert.False(Accepts(() => Validation.Labels("labels", new Dictionary<string, string> { ["tenant"] = "acme\n" })));
        Assert.False(Accepts(() => Validation.Labels("labels", new Dictionary<string, string> { ["tenant"] = "a\u001b[31mred" })));
        Assert.False(Accepts(() => Validation.Labels("labels", new Dictionary<string, string> { ["tenant\n"] = "x" })));
    }

    [Fact]
    public void A_refusal_names_the_field_and_cuts_what_it_echoes()
    {
        var e = Assert.Throws<ControllerException>(() => Validation.VolumeName("name", new string('x', 500)));
        Assert.Equal(ControllerErrorKind.InvalidArgument, e.Kind);
        Assert.StartsWith("name '", e.Message, StringComparison.Ordinal);
        Assert.True(e.Message.Length < 300, e.Message);
    }

    [Fact]
    public void Sizes_round_up_to_whole_extents_and_zero_or_absurd_sizes_are_refused()
    {
        Assert.Equal(8UL << 20, Validation.RoundUp((4UL << 20) + 1, 4UL << 20));
        Assert.False(Accepts(() => Validation.PositiveSize("size_bytes", 0)));
        Assert.False(Accepts(() => Validation.PositiveSize("size_bytes", ulong.MaxValue)));
    }

    private static bool Accepts(Action check)
    {
        try
        {
            check();
            return true;
        }
        catch (ControllerException e) when (e.Kind == ControllerErrorKind.InvalidArgument)
        {
            return false;
        }
    }
}
