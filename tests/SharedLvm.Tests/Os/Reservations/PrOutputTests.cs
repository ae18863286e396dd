using SharedLvm.Os.Reservations;

namespace SharedLvm.Tests.Os.Reservations;

/// <summary>
/// The parser on mpathpersist (multipath-tools 0.9.4) and sg_persist (sg3-utils 1.46) output: the
/// "lab-" fixtures are captured in the SAN lab (tgt 1.0.85 and QEMU's scsi-hd), the others follow the
/// tools' documented print formats (Fixtures/reservations/README.md).
/// </summary>
public class PrOutputTests
{
    private static readonly ReservationKey NodeA = ReservationKey.ForNodeNumber(1);
    private static readonly ReservationKey NodeB = ReservationKey.ForNodeNumber(2);

    private static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "reservations", name));

    [Fact]
    public void Mpathpersist_read_keys_counts_one_registration_per_path()
    {
        var keys = PrOutput.ParseKeys(Fixture("mpathpersist-read-keys-two-nodes.txt"));
        Assert.Equal(6U, keys.Generation);
        Assert.Equal(4, keys.Keys.Count);
        Assert.Equal(2, keys.Registrations(NodeA));
        Assert.Equal(2, keys.Registrations(NodeB));
        Assert.Equal([NodeA, NodeB], keys.Distinct());
    }

    [Fact]
    public void After_a_preempt_the_victims_key_is_gone_from_every_path()
    {
        var keys = PrOutput.ParseKeys(Fixture("mpathpersist-read-keys-after-preempt.txt"));
        Assert.Equal(7U, keys.Generation);
        Assert.False(keys.Contains(NodeA));
        Assert.Equal(2, keys.Registrations(NodeB));
    }

    [Theory]
    [InlineData("mpathpersist-read-keys-none.txt")]
    [InlineData("sg_persist-read-keys-none.txt")]
    public void No_registrations_is_an_empty_list(string fixture)
    {
        var keys = PrOutput.ParseKeys(Fixture(fixture));
        Assert.Equal(0U, keys.Generation);
        Assert.Empty(keys.Keys);
    }

    [Fact]
    public void Sg_persist_read_keys_skips_the_inquiry_lines()
    {
        var keys = PrOutput.ParseKeys(Fixture("sg_persist-read-keys.txt"));
        Assert.Equal([NodeA, NodeB], keys.Keys);
    }

    [Fact]
    public void Mpathpersist_read_reservation_gives_holder_and_type()
    {
        var state = PrOutput.ParseReservation(Fixture("mpathpersist-read-reservation-held.txt"));
        Assert.True(state.Held);
        Assert.Equal(NodeA, state.Holder);
        Assert.Equal(PrType.WriteExclusiveRegistrantsOnly, state.Type);
    }

    [Fact]
    public void Sg_persist_read_reservation_gives_holder_and_type()
    {
        var state = PrOutput.ParseReservation(Fixture("sg_persist-read-reservation.txt"));
        Assert.Equal((7U, NodeB, PrType.WriteExclusiveRegistrantsOnly), (state.Generation, state.Holder!.Value, state.Type));
    }

    [Theory]
    [InlineData("mpathpersist-read-reservation-none.txt")]
    [InlineData("sg_persist-read-reservation-none.txt")]
    public void No_reservation_has_no_holder(string fixture)
    {
        var state = PrOutput.ParseReservation(Fixture(fixture));
        Assert.False(state.Held);
        Assert.Equal(PrType.None, state.Type);
    }

    [Theory]
    [InlineData("")]
    [InlineData("mpathpersist: failed to open device\n")]
    public void Output_without_a_generation_line_is_refused_not_guessed(string output)
    {
        Assert.Throws<FormatException>(() => PrOutput.ParseKeys(output));
        Assert.Throws<FormatException>(() => PrOutput.ParseReservation(output));
    }

    [Theory]
    [InlineData("Write Exclusive", PrType.WriteExclusive)]
    [InlineData("Exclusive Access, all registrants", PrType.ExclusiveAccessAllRegistrants)]
    [InlineData("Write Exclusive, all registrants", PrType.WriteExclusiveAllRegistrants)]
    public void Type_names_map_to_spc_codes(string text, PrType type) => Assert.Equal(type, PrOutput.TypeOf(text));

    [Fact]
    public void Captured_from_tgt_two_nodes_on_two_paths_each_and_one_holds_write_exclusive_registrants_only()
    {
        var keys = PrOutput.ParseKeys(Fixture("lab-tgt-mpathpersist-read-keys.txt"));
        Assert.Equal(7U, keys.Generation);
        Assert.Equal(2, keys.Registrations(NodeA));
        Assert.Equal(2, keys.Registrations(NodeB));

        var reservation = PrOutput.ParseReservation(Fixture("lab-tgt-mpathpersist-read-reservation.txt"));
        Assert.Equal((7U, NodeB, PrType.WriteExclusiveRegistrantsOnly), (reservation.Generation, reservation.Holder, reservation.Type));
    }

    [Fact]
    public void Captured_from_an_lu_without_pr_exit_5_is_not_supported()
    {
        // mpathpersist on QEMU's emulated scsi-hd with CAP_SYS_RAWIO: exit 5 (MPATH_PR_ILLEGAL_REQ).
        Assert.Equal(PrErrorKind.NotSupported,
            PersistentReservationException.ClassifyMpathpersist(5, Fixture("lab-scsi-hd-mpathpersist-read-keys-exit5.txt")));
    }
}
