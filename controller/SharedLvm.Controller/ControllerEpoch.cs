using SharedLvm.Contracts.V1;

namespace SharedLvm.Controller;

/// <summary>
/// This controller's fencing token: agents refuse commands carrying an older epoch than the highest
/// they have seen, so a deposed controller's late order can't activate anything. Taken once at start,
/// before the API serves.
/// </summary>
public sealed class ControllerEpoch
{
    private ulong _value;

    public string ControllerId { get; } = Guid.NewGuid().ToString("N")[..12];

    public ulong Value => Volatile.Read(ref _value);

    internal void Set(ulong value) => Volatile.Write(ref _value, value);

    public Epoch ToContract() => new() { Value = Value, ControllerId = ControllerId };

    /// <summary>The header of every command to a node's agent: who sends it, to whom, under which epoch.</summary>
    public CommandHeader HeaderFor(string node) => new()
    {
        Epoch = ToContract(),
        RequestId = Guid.NewGuid().ToString("N"),
        NodeName = node,
    };
}
