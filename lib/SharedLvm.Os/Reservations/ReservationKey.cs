using System.Globalization;

namespace SharedLvm.Os.Reservations;

/// <summary>
/// A SCSI-3 persistent reservation key (8 bytes). The one rule for SharedLvm's keys, used by the
/// controller (which assigns them) and the agent (which registers them): the high four bytes are
/// "SLVM" so that an operator reading the LU's keys with sg_persist sees which are ours, the low four
/// bytes the node's number, assigned once by the controller and never derived from the node's name
/// (a renamed or re-imaged node must not inherit or change a key). Zero is not a key: in PR OUT
/// a zero service action key means "unregister".
/// </summary>
public readonly record struct ReservationKey(ulong Value)
{
    /// <summary>"SLVM" in ASCII.</summary>
    public const ulong ClusterPrefix = 0x534C564DUL << 32;

    public static ReservationKey ForNodeNumber(uint number) =>
        number == 0 ? throw new ArgumentOutOfRangeException(nameof(number), "Node numbers start at 1.") : new(ClusterPrefix | number);

    /// <summary>Set in the low four bytes of a controller host's key: node numbers never reach it.</summary>
    private const ulong ControllerBit = 0x80000000UL;

    /// <summary>
    /// A controller host's key: "SLVM", the controller bit, its sanlock host id (0 for a single
    /// controller). Never a node's, so no fence preempts it.
    /// </summary>
    public static ReservationKey ForControllerHost(ulong hostId) => new(ClusterPrefix | ControllerBit | (hostId & 0xFFFFUL));

    public bool IsSharedLvm => (Value & 0xFFFFFFFF00000000UL) == ClusterPrefix;

    public bool IsControllerHost => IsSharedLvm && (Value & ControllerBit) != 0;

    public uint NodeNumber => IsSharedLvm && !IsControllerHost ? (uint)(Value & 0xFFFFFFFFUL) : 0;

    /// <summary>The form mpathpersist and sg_persist take and print: 0x followed by lower-case hex, no padding.</summary>
    public override string ToString() => "0x" + Value.ToString("x", CultureInfo.InvariantCulture);

    public static ReservationKey Parse(string text)
    {
        var digits = text.Trim();
        if (digits.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            digits = digits[2..];
        }

        return ulong.TryParse(digits, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value)
            ? new ReservationKey(value)
            : throw new FormatException($"'{text}' is not a reservation key (hex, e.g. 0x534c564d00000001).");
    }
}
