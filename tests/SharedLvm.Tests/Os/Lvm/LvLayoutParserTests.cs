using SharedLvm.Os.Lvm;

namespace SharedLvm.Tests.Os.Lvm;

/// <summary>`pvs --segments` of one LV, captured from lvm 2.03.16 (an LV extended around another: two runs).</summary>
public class LvLayoutParserTests
{
    private static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "lvm", name));

    [Fact]
    public void An_extended_lv_is_its_runs_in_lv_order_at_device_offsets_past_pe_start()
    {
        var layout = LvLayoutParser.Parse(Fixture("pvs-segments-lv-two-segments.json"))!;

        Assert.Equal(("probevg", "a", 4UL << 20), (layout.VgName, layout.LvName, layout.ExtentSizeBytes));
        Assert.Equal(
            [new ExtentRun("/dev/loop3", 0, 1UL << 20, 8UL << 20, "linear"), new ExtentRun("/dev/loop3", 8UL << 20, (1UL << 20) + (5 * (4UL << 20)), 8UL << 20, "linear")],
            layout.Runs);
        Assert.Equal(16UL << 20, layout.SizeBytes);
        Assert.True(layout.IsLinear);
        Assert.False(layout.IsActiveHere);
        Assert.Equal(["sharedlvm"], layout.Tags);
    }

    [Fact]
    public void No_segment_means_no_such_lv()
    {
        Assert.Null(LvLayoutParser.Parse("""{"report":[{"pvseg":[]}]}"""));
    }

    [Fact]
    public void A_snapshot_or_thin_segment_is_not_linear()
    {
        var json = Fixture("pvs-segments-lv-two-segments.json").Replace("\"segtype\":\"linear\", \"seg_start\":\"0\"", "\"segtype\":\"snapshot\", \"seg_start\":\"0\"", StringComparison.Ordinal);
        Assert.False(LvLayoutParser.Parse(json)!.IsLinear);
    }
}
