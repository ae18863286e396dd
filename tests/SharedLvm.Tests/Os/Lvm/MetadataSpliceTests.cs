using SharedLvm.Os.Lvm;

namespace SharedLvm.Tests.Os.Lvm;

/// <summary>Splicing changes into lvm's own text (a captured vgcfgbackup); PoolWriterTests proves it against lvm itself.</summary>
public class MetadataSpliceTests
{
    private const ulong MiB = 1024 * 1024;
    private static readonly string Captured = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "lvm", "vgcfgbackup-linear.txt"));

    [Fact]
    public void Changed_stanzas_are_rewritten_new_ones_appended_and_every_other_byte_is_lvms()
    {
        var vg = VgMetadata.Parse(Captured);
        var splice = new MetadataSplice(vg, "ctl", DateTimeOffset.FromUnixTimeSeconds(1796210000));
        Assert.Null(splice.TryCreate("slvm-d", 4 * MiB, ["sharedlvm", "slvm_name=d"]));
        Assert.Null(splice.TryExtend("slvm-c", 20 * MiB));
        Assert.Null(splice.TryRetag("slvm-a", ["sharedlvm_owner_node-a"], ["slvm_name=a"]));
        var text = splice.Render();

        MetadataInvariants.Check(vg, text, vg.Seqno, new HashSet<string> { "slvm-d" }, new HashSet<string> { "slvm-a", "slvm-c" });
        var after = VgMetadata.Parse(text);
        Assert.Equal(Captured[..vg.Lvs[0].Section.Start], text[..vg.Lvs[0].Section.Start]); // header, VG, PVs untouched
        var d = after.Lvs.Single(l => l.Name == "slvm-d");
        Assert.Equal([new VgMetadata.Segment(0, 1, "striped", 1, "pv0", 2)], d.Segments); // the one-extent hole, as lvcreate picks it
        Assert.Equal(["READ", "WRITE", "VISIBLE"], d.Status);
        Assert.Equal(["NOAUTOACTIVATE"], d.Flags);
        Assert.Equal(1796210000, d.Section.Number("creation_time"));
        Assert.Equal("ctl", d.Section.String("creation_host"));
        Assert.Equal([new VgMetadata.Segment(0, 5, "striped", 1, "pv0", 3)], after.Lvs.Single(l => l.Name == "slvm-c").Segments); // contiguous: merged
        var a = after.Lvs.Single(l => l.Name == "slvm-a");
        Assert.Equal(["sharedlvm", "sharedlvm_owner_node-a"], a.Tags);
        Assert.Equal(vg.Lvs[0].Id, a.Id);
    }

    [Fact]
    public void What_lvm_would_refuse_is_left_to_lvm()
    {
        var splice = new MetadataSplice(VgMetadata.Parse(Captured), "ctl", DateTimeOffset.UnixEpoch);
        Assert.Contains("already exists", splice.TryCreate("slvm-a", 4 * MiB, []), StringComparison.Ordinal);
        Assert.Contains("not valid", splice.TryCreate("bad_rimage", 4 * MiB, []), StringComparison.Ordinal);
        Assert.Contains("no room", splice.TryCreate("slvm-big", 1024 * MiB, []), StringComparison.Ordinal);
        Assert.Contains("not fewer", splice.TryExtend("slvm-c", 12 * MiB), StringComparison.Ordinal);
        Assert.Contains("does not exist", splice.TryRetag("slvm-gone", ["x"], []), StringComparison.Ordinal);
        Assert.Empty(splice.Created);
        Assert.Empty(splice.Changed);
    }

    [Fact]
    public void A_vg_with_anything_but_plain_linear_lvs_is_never_spliced()
    {
        var thin = Captured.Replace("type = \"striped\"", "type = \"thin-pool\"", StringComparison.Ordinal);
        Assert.Throws<NotSupportedException>(() => new MetadataSplice(VgMetadata.Parse(thin), "ctl", DateTimeOffset.UnixEpoch));
        var hidden = Captured.Replace("status = [\"READ\", \"WRITE\", \"VISIBLE\"]", "status = [\"READ\", \"WRITE\"]", StringComparison.Ordinal);
        Assert.Throws<NotSupportedException>(() => new MetadataSplice(VgMetadata.Parse(hidden), "ctl", DateTimeOffset.UnixEpoch));
        Assert.Throws<FormatException>(() => VgMetadata.Parse(Captured[..(Captured.Length / 2)]));
    }
}
