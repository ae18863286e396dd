using System.Globalization;
using Microsoft.AspNetCore.Http;

namespace SharedLvm.Hosting;

/// <summary>
/// Drops a grpc-timeout header that no clock can represent. The spec allows up to 8 digits with the
/// unit H, so "99999999H" (11,400 years) is valid on the wire, but grpc-dotnet adds it to the current
/// time before any handler runs and the overflow answers HTTP 500 with no gRPC status, on every
/// method. A deadline that far away means "none": unary calls are still capped by the call gate.
/// </summary>
internal static class GrpcTimeoutClamp
{
    private const string Header = "grpc-timeout";

    /// <summary>Anything longer is treated as no deadline.</summary>
    internal static readonly TimeSpan Longest = TimeSpan.FromDays(365);

    public static Task InvokeAsync(HttpContext http, RequestDelegate next)
    {
        if (http.Request.Headers.TryGetValue(Header, out var value) && TryParse(value.ToString(), out var timeout) && timeout > Longest)
        {
            http.Request.Headers.Remove(Header);
        }

        return next(http);
    }

    /// <summary>"TimeoutValue TimeoutUnit": 1 to 8 ASCII digits, then one of H M S m u n.</summary>
    internal static bool TryParse(string text, out TimeSpan timeout)
    {
        timeout = TimeSpan.Zero;
        if (text.Length is < 2 or > 9 || !long.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var amount))
        {
            return false;
        }

        double? seconds = text[^1] switch
        {
            'H' => amount * 3600.0,
            'M' => amount * 60.0,
            'S' => amount,
            'm' => amount / 1e3,
            'u' => amount / 1e6,
            'n' => amount / 1e9,
            _ => null,
        };
        if (seconds is not { } s)
        {
            return false;
        }

        timeout = s >= TimeSpan.MaxValue.TotalSeconds ? TimeSpan.MaxValue : TimeSpan.FromSeconds(s);
        return true;
    }
}
