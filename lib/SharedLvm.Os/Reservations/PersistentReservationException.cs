namespace SharedLvm.Os.Reservations;

public enum PrErrorKind
{
    Failed,
    /// <summary>The target refused the command because of a reservation: this I_T nexus is not registered (fenced).</summary>
    ReservationConflict,
    /// <summary>ILLEGAL REQUEST / invalid opcode: the LU or its target does not implement the command (no PR at all, or no PREEMPT AND ABORT).</summary>
    NotSupported,
    /// <summary>The map or its paths are not there, or mpathpersist could not talk to multipathd.</summary>
    DeviceUnavailable,
    /// <summary>
    /// The SG_IO ioctl failed on every path ("IOCTL failed"): the kernel refuses PR commands to a
    /// process without CAP_SYS_RAWIO. A fault of the caller's privileges, never of the LU.
    /// </summary>
    IoctlRefused,
}

/// <summary>mpathpersist (or sg_persist) failed; the kind is decided once, here, from its exit status.</summary>
public class PersistentReservationException : Exception
{
    public PersistentReservationException()
    {
    }

    public PersistentReservationException(string message)
        : base(message)
    {
    }

    public PersistentReservationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public PersistentReservationException(string command, int exitCode, string standardError, PrErrorKind kind)
        : base($"{command} failed with exit code {exitCode} ({kind}): {standardError.Trim()}" +
               (kind == PrErrorKind.IoctlRefused ? " (SG_IO refused on every path: the process needs CAP_SYS_RAWIO)" : string.Empty))
    {
        Command = command;
        ExitCode = exitCode;
        Kind = kind;
    }

    public string Command { get; } = string.Empty;

    public int ExitCode { get; }

    public PrErrorKind Kind { get; }

    /// <summary>
    /// mpathpersist's exit status is its MPATH_PR_* code (libmpathpersist/mpath_persist.h,
    /// multipath-tools 0.9.4): 5 ILLEGAL_REQ, 7 SENSE_INVALID_OP, 11 RESERV_CONFLICT, 13 DMMP_ERROR
    /// (no such map). sg_persist's is sg3-utils' SG_LIB_CAT_*: 5 ILLEGAL_REQUEST, 24
    /// RESERVATION_CONFLICT (sg_lib.h).
    /// Exit 15 (MPATH_PR_OTHER) with "sdX: IOCTL failed -1" for every path is the kernel refusing
    /// SG_IO: the SAN lab's agent unit lacked CAP_SYS_RAWIO, and every LU, the one behind tgt with
    /// PR included, looked like "no PR" until the capability was granted. With it, QEMU's emulated
    /// scsi-hd (no PR) answers exit 5, as a real array without PR does.
    /// </summary>
    public static PrErrorKind ClassifyMpathpersist(int exitCode, string output = "") => exitCode switch
    {
        5 or 7 => PrErrorKind.NotSupported,
        15 when output.Contains("IOCTL failed", StringComparison.Ordinal) => PrErrorKind.IoctlRefused,
        11 => PrErrorKind.ReservationConflict,
        13 => PrErrorKind.DeviceUnavailable,
        _ => PrErrorKind.Failed,
    };

    public static PrErrorKind ClassifySgPersist(int exitCode) => exitCode switch
    {
        5 or 9 => PrErrorKind.NotSupported,
        24 => PrErrorKind.ReservationConflict,
        _ => PrErrorKind.Failed,
    };
}
