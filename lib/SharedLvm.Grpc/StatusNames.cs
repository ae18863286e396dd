using Grpc.Core;

namespace SharedLvm.Grpc;

/// <summary>
/// gRPC status codes as the spec and every other implementation spell them (NOT_FOUND, not NotFound):
/// the form operators see in metrics labels, audit lines and slvm's errors.
/// </summary>
public static class StatusNames
{
    private static readonly Dictionary<StatusCode, string> Names = Enum.GetValues<StatusCode>()
        .ToDictionary(c => c, c => c switch
        {
            StatusCode.OK => "OK",
            _ => string.Concat(c.ToString().Select((ch, i) => i > 0 && char.IsUpper(ch) ? "_" + ch : ch.ToString())).ToUpperInvariant(),
        });

    public static string Of(StatusCode code) => Names.TryGetValue(code, out var name) ? name : ((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture);
}
