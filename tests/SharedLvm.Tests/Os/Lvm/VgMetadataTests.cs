using System.Globalization;
using SharedLvm.Os.Lvm;

namespace SharedLvm.Tests.Os.Lvm;

/// <summary>The VG read from lvm's text (a captured vgcfgbackup), and the VG lvm holds after restoring it.</summary>
public class VgMetadataTests
{
    private static readonly string Captured = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "lvm", "vgcfgbackup-linear.txt"));

    [Fact]
    public void Restored_is_the_same_text_one_seqno_higher_and_reads_as_a_parse_of_it_would()
    {
        var vg = VgMetadata.Parse(Captured);

        var restored = vg.Restored();

        var expected = Captured.Replace($"\tseqno = {vg.Seqno}\n", $"\tseqno = {vg.Seqno + 1}\n", StringComparison.Ordinal);
        Assert.NotEqual(Captured, expected);
        Assert.Equal(expected, restored.Text.Text);
        Assert.Equal(vg.Seqno + 1, restored.Seqno);
        Assert.Equal((long)(vg.Seqno + 1), restored.Section.Number("seqno"));
        AssertSameVg(VgMetadata.Parse(expected), restored);
        Assert.Equal(restored.Seqno + 1, restored.Restored().Seqno); // and again: what the writer does batch after batch
    }

    [Fact]
    public void Restored_past_a_power_of_ten_is_parsed_anew()
    {
        var vg = VgMetadata.Parse(WithSeqno(Captured, 9));

        var restored = vg.Restored();

        Assert.Equal(10UL, restored.Seqno);
        Assert.Equal(WithSeqno(Captured, 10), restored.Text.Text);
        AssertSameVg(VgMetadata.Parse(WithSeqno(Captured, 10)), restored);
    }

    [Fact]
    public void A_number_of_another_width_does_not_fit_its_span()
    {
        var vg = VgMetadata.Parse(WithSeqno(Captured, 9));

        Assert.Throws<ArgumentException>(() => vg.Text.WithNumber(vg.Section.Get("seqno")!, 10));
    }

    private static string WithSeqno(string text, ulong seqno) =>
        System.Text.RegularExpressions.Regex.Replace(text, @"(\n\tseqno = )\d+", "${1}" + seqno.ToString(CultureInfo.InvariantCulture));

    private static void AssertSameVg(VgMetadata expected, VgMetadata actual)
    {
        Assert.Equal((expected.Name, expected.Id, expected.Seqno, expected.ExtentSectors), (actual.Name, actual.Id, actual.Seqno, actual.ExtentSectors));
        Assert.Equal(expected.Pvs, actual.Pvs);
        Assert.Equal(expected.Lvs.Select(l => (l.Name, l.Id, l.Section.Start, l.Section.End, l.Raw.ToString())), actual.Lvs.Select(l => (l.Name, l.Id, l.Section.Start, l.Section.End, l.Raw.ToString())));
        Assert.Equal(expected.Lvs.SelectMany(l => l.Segments), actual.Lvs.SelectMany(l => l.Segments));
    }
}
