using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace SharedLvm.Benchmarks;

/// <summary>
/// Seeds a VG with N one-extent SharedLvm volumes in one vgcfgrestore: 8,000 lvcreates would take
/// over 40 minutes (570 ms each at 8k LVs), the restore takes seconds. The LVs are written exactly
/// as the controller tags its own, so it loads them as volumes.
/// </summary>
internal static class VgSeeder
{
    private const string UuidAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    /// <summary>Writes a metadata file: the empty VG's backup with N LVs added and a higher seqno.</summary>
    public static void Write(string emptyBackup, string output, string vgName, int count, ulong seqno)
    {
        var text = File.ReadAllText(emptyBackup);
        text = System.Text.RegularExpressions.Regex.Replace(text, @"(\n\tseqno = )\d+", "${1}" + seqno.ToString(CultureInfo.InvariantCulture));
        var volumes = new StringBuilder("\n\tlogical_volumes {\n");
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        for (var i = 0; i < count; i++)
        {
            var id = SharedLvm.Contracts.Conventions.VolumeId.New();
            volumes.Append(CultureInfo.InvariantCulture, $$"""

                		slvm-{{id}} {
                			id = "{{LvmUuid()}}"
                			status = ["READ", "WRITE", "VISIBLE"]
                			flags = ["NOAUTOACTIVATE"]
                			tags = ["sharedlvm", "slvm_name=seed-{{i:D6}}", "slvm_l_tier=gold"]
                			creation_time = {{now}}
                			creation_host = "bench"
                			segment_count = 1

                			segment1 {
                				start_extent = 0
                				extent_count = 1

                				type = "striped"
                				stripe_count = 1

                				stripes = [
                					"pv0", {{i}}
                				]
                			}
                		}

                """);
        }

        volumes.Append("\t}\n");
        // The VG block ends with "}\n" at column 0 after physical_volumes; insert the LVs before it.
        var vgStart = text.IndexOf("\n" + vgName + " {", StringComparison.Ordinal);
        var vgEnd = text.IndexOf("\n}\n", vgStart, StringComparison.Ordinal);
        File.WriteAllText(output, text[..vgEnd] + volumes + text[vgEnd..]);
    }

    private static string LvmUuid()
    {
        var chars = RandomNumberGenerator.GetItems<char>(UuidAlphabet, 32);
        var s = new string(chars);
        return $"{s[..6]}-{s[6..10]}-{s[10..14]}-{s[14..18]}-{s[18..22]}-{s[22..26]}-{s[26..]}";
    }
}
