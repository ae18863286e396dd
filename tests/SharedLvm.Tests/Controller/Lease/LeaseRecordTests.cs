using SharedLvm.Controller.Lease;

namespace SharedLvm.Tests.Controller.Lease;

/// <summary>The record beside the writer lease: the epoch counter and the active controller's address.</summary>
public sealed class LeaseRecordTests
{
    private static readonly LeaseRecord Record = new(7, "c0ffee", 2, "ctl2.example:7400", DateTimeOffset.Parse("2026-12-02T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    [Fact]
    public void A_record_reads_back_as_written()
    {
        var slot = new byte[4096];
        Record.Format(slot);
        Assert.Equal(Record, LeaseRecord.Parse(slot));
    }

    [Fact]
    public void A_never_written_or_torn_slot_is_no_record()
    {
        Assert.Null(LeaseRecord.Parse(new byte[4096]));
        var slot = new byte[4096];
        Record.Format(slot);
        slot[60] = (byte)'}'; // a write torn inside the JSON (which may still parse)
        Assert.Null(LeaseRecord.Parse(slot));
        var lying = new byte[4096];
        Record.Format(lying);
        lying[10] = 0xff; // a length beyond the slot
        lying[13] = 0x7f;
        Assert.Null(LeaseRecord.Parse(lying));
    }
}
