using SharedLvm.Grpc;

namespace SharedLvm.Tests.Grpc;

public class GrpcProtocolTests
{
    [Theory]
    [InlineData("100m", 100 * TimeSpan.TicksPerMillisecond)]
    [InlineData("5S", 5 * TimeSpan.TicksPerSecond)]
    [InlineData("2M", 2 * TimeSpan.TicksPerMinute)]
    [InlineData("1H", TimeSpan.TicksPerHour)]
    [InlineData("250u", 250 * TimeSpan.TicksPerMicrosecond)]
    [InlineData("99999999n", 999999)]
    public void Parses_grpc_timeout(string value, long ticks)
    {
        Assert.True(GrpcProtocol.TryParseTimeout(value, out var timeout));
        Assert.Equal(ticks, timeout.Ticks);
    }

    [Theory]
    [InlineData("")]
    [InlineData("S")]
    [InlineData("123456789S")]
    [InlineData("10x")]
    [InlineData("-5S")]
    [InlineData("1.5S")]
    public void Rejects_malformed_grpc_timeout(string value) =>
        Assert.False(GrpcProtocol.TryParseTimeout(value, out _));

    [Theory]
    [InlineData(0.0005)]
    [InlineData(1.5)]
    [InlineData(3600.0)]
    [InlineData(86400.0 * 400)]
    public void Formatted_timeout_fits_8_digits_and_never_shortens(double seconds)
    {
        var formatted = GrpcProtocol.FormatTimeout(TimeSpan.FromSeconds(seconds));
        Assert.True(formatted.Length <= 9, formatted);
        Assert.True(GrpcProtocol.TryParseTimeout(formatted, out var parsed));
        Assert.True(parsed >= TimeSpan.FromSeconds(seconds) || seconds > 99_999_999 * 3600.0, formatted);
    }

    [Fact]
    public void Message_percent_encoding_round_trips_unicode_and_percent()
    {
        const string text = "volume vol-1 is attached to node-a (ünïcode %)\n";
        var encoded = GrpcProtocol.EncodeMessage(text);
        Assert.DoesNotContain('\n', encoded);
        Assert.DoesNotContain('ü', encoded);
        Assert.Contains("%25", encoded, StringComparison.Ordinal);
        Assert.Equal(text, GrpcProtocol.DecodeMessage(encoded));
    }

    [Theory]
    [InlineData("application/grpc", true)]
    [InlineData("application/grpc+proto", true)]
    [InlineData("application/grpc; charset=utf-8", true)]
    [InlineData("application/grpc-web", false)]
    [InlineData("application/json", false)]
    [InlineData(null, false)]
    public void Recognises_grpc_content_types(string? contentType, bool expected) =>
        Assert.Equal(expected, GrpcProtocol.IsGrpcContentType(contentType));
}
