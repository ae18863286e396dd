using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using SharedLvm.Hosting.Security;

namespace SharedLvm.Tests.Hosting.Security;

/// <summary>The tokens file: hashes only, reread on change, a broken edit never locks clients out.</summary>
public sealed class BearerTokensTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("slvm-tokens-").FullName;
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-12-02T08:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    private string Path => System.IO.Path.Combine(_directory, "tokens");

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void A_token_issued_after_start_works_at_once()
    {
        Write();
        var tokens = new BearerTokens(Path, _time, NullLogger.Instance);
        Assert.Null(tokens.Find("secret-1"));

        Write(Line("ci-bot", "operator", "secret-1"));
        File.SetLastWriteTimeUtc(Path, DateTime.UtcNow.AddSeconds(5)); // a later mtime than the first write's, whatever the clock's tick

        var identity = tokens.Find("secret-1");
        Assert.Equal(("ci-bot", "operator"), (identity?.Name, identity?.Role));
    }

    [Fact]
    public void A_revoked_token_stops_working_within_a_second()
    {
        Write(Line("ci-bot", "operator", "secret-1"));
        var tokens = new BearerTokens(Path, _time, NullLogger.Instance);
        Assert.NotNull(tokens.Find("secret-1"));

        Write();
        File.SetLastWriteTimeUtc(Path, DateTime.UtcNow.AddSeconds(5));
        _time.Advance(TimeSpan.FromSeconds(1));

        Assert.Null(tokens.Find("secret-1"));
    }

    [Fact]
    public void A_broken_line_keeps_the_tokens_that_were_valid()
    {
        Write(Line("ci-bot", "operator", "secret-1"));
        var tokens = new BearerTokens(Path, _time, NullLogger.Instance);

        Write(Line("ci-bot", "operator", "secret-1"), "ci-bot superuser sha256:nothex");
        File.SetLastWriteTimeUtc(Path, DateTime.UtcNow.AddSeconds(5));
        _time.Advance(TimeSpan.FromSeconds(1));

        Assert.NotNull(tokens.Find("secret-1"));
        Assert.Equal(1, tokens.Count);
    }

    [Fact]
    public void A_file_others_can_read_is_refused()
    {
        Write(Line("ci-bot", "operator", "secret-1"));
        File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);

        Assert.ThrowsAny<Exception>(() => new BearerTokens(Path, _time, NullLogger.Instance));
    }

    private static string Line(string name, string role, string token) =>
        $"{name} {role} sha256:{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)))}";

    private void Write(params string[] lines)
    {
        File.WriteAllLines(Path, ["# NAME ROLE sha256:HEX", .. lines]);
        File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }
}
