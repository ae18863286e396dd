using SharedLvm.Os.Lvm;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Os.Lvm;

/// <summary>The seqno read straight from the PV's metadata area is the one lvm reports, write after write.</summary>
public sealed class MetadataAreaTests : IDisposable
{
    private readonly LoopDevice? _lu = LoopDevice.Create(512L * 1024 * 1024);
    private readonly string _vg = "mda" + Guid.NewGuid().ToString("N")[..6];

    public void Dispose()
    {
        if (_lu is not null)
        {
            _lu.Lvm("vgremove", "-f", _vg);
            _lu.Dispose();
        }
    }

    [Fact]
    public void Reads_the_current_seqno_from_disk_as_lvm_reports_it()
    {
        LoopDevice.Present(_lu);
        Assert.Throws<FormatException>(() => MetadataArea.ReadSeqno(_lu.Device)); // blank: no PV label
        Assert.Equal(0, _lu.Lvm("pvcreate", "--metadatasize", "1m", _lu.Device).Code);
        Assert.Equal(0, _lu.Lvm("vgcreate", _vg, _lu.Device).Code);
        for (var i = 0; i < 40; i++)
        {
            // Big tags move the text around the metadata ring until it wraps.
            Assert.Equal(0, _lu.Lvm("lvcreate", "-an", "-Zn", "-y", "-L", "4m", "-n", $"lv{i}", "--addtag", new string('t', 1000), _vg).Code);
            var reported = ulong.Parse(_lu.LvmReport("vgs", "--noheadings", "-o", "vg_seqno", _vg).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(reported, MetadataArea.ReadSeqno(_lu.Device));
        }
    }
}
