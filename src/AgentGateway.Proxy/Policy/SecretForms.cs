using System.Buffers;
using System.Text;

namespace AgentGateway.Proxy.Policy;

/// <summary>
/// The forms in which secrets come back from an upstream that echoes what it was sent, and a
/// search for them in text (a header, a reason phrase, a body read one byte per character as
/// Latin-1, so a position in the text is a position in the bytes).
/// <para>
/// Which forms, and why: an echo repeats the request — a debug endpoint, an error page, a JSON
/// document quoting a header, a redirect carrying it in a URL, a gRPC status message — and each
/// writer applies its own escaping. So each secret is searched for
/// <list type="bullet">
/// <item>as it is, with its punctuation in any of the escapes those writers use: JSON (<c>\u002B</c>,
/// <c>\/</c>), URL (<c>%2B</c>, <c>%2b</c>, a space as <c>+</c>; also gRPC's <c>grpc-message</c>), HTML
/// character references (<c>&amp;#43;</c>, <c>&amp;#x2B;</c>, <c>&amp;quot;</c>). Letters, digits and
/// <c>-_.</c> are never escaped by any of them, which keeps the search anchored on literal text
/// (<c>~</c> is: <c>WebUtility.UrlEncode</c> writes <c>%7E</c>);</item>
/// <item>base64, standard and URL-safe, at each of the three alignments its bytes can have inside
/// a longer encoded text (a whole header block encoded, say), so padding does not matter;</item>
/// <item>hex, lower and upper case (debug dumps);</item>
/// <item>base64 and hex wrapped into lines, as the <c>base64</c> and <c>xxd -p</c> tools, MIME and
/// PEM writers wrap them (LF or CRLF, raw or JSON-escaped, at least <see cref="MinimumLine"/>
/// characters apart): each such form is anchored on no more of its first characters than a short
/// form leaves to its tails, and is also matched back from each of its first few blocks on, so a
/// line end anywhere in it leaves an anchor whole (a short tail counts only with its whole form);</item>
/// <item>UTF-16, both byte orders (a page in a charset a client honours).</item>
/// </list>
/// Decoded content codings are searched as text (the response guard decodes them first). What is
/// not searched: a secret encrypted, compressed inside a body, or encoded twice, which no echo does
/// by accident — an upstream that sets out to hand an agent the credential it was sent can always
/// do so, and is outside what a gateway can stop (its credential is scoped to that upstream).
/// </para>
/// </summary>
public sealed class SecretForms
{
    /// <summary>The longest escape of one character: <c>&amp;#x0002B;</c>.</summary>
    private const int MaxEscapeLength = 10;

    /// <summary>Longer anchors add nothing to the search; the form is compared whole at each hit.</summary>
    private const int MaxAnchorLength = 16;

    /// <summary>Base64 forms shorter than this would match by chance.</summary>
    private const int MinimumBase64Length = 12;

    /// <summary>The fewest characters between two line ends a wrapped form may have; wrapping tools
    /// use 60 to 76, so this bounds how many line ends a match can hold.</summary>
    private const int MinimumLine = 16;

    /// <summary>The longest line end inside a wrapped form: <c>\r\n</c> written in a JSON string.</summary>
    private const int MaxLineEndLength = 4;

    public static readonly SecretForms None = new([]);

    private readonly Form[] _forms;

    /// <summary>The literal start of every form whose first character is never escaped.</summary>
    private readonly SearchValues<string>? _anchors;

    /// <summary>Where a form whose first character may be escaped can start: that character, or an escape.</summary>
    private readonly SearchValues<char>? _escapedStarts;

    private SecretForms(Form[] forms)
    {
        _forms = forms;
        string[] anchors = [.. forms.Where(f => !f.EscapeLed).Select(f => f.Anchor).Distinct(StringComparer.Ordinal)];
        _anchors = anchors.Length > 0 ? SearchValues.Create(anchors, StringComparison.Ordinal) : null;
        var escapeLed = forms.Where(f => f.EscapeLed).Select(f => f.Text[0]).ToList();
        _escapedStarts = escapeLed.Count > 0 ? SearchValues.Create([.. escapeLed, '%', '\\', '&', .. escapeLed.Contains(' ') ? "+" : ""]) : null;
        // An escape or a line end only lengthens a form where it matches.
        Shortest = forms.Any(f => f.Alone) ? forms.Where(f => f.Alone).Min(f => f.Text.Length) : int.MaxValue;
    }

    public bool IsEmpty => _forms.Length == 0;

    /// <summary>The fewest characters (bytes, in a body) any form takes up: text shorter than this
    /// holds none. <see cref="int.MaxValue"/> when there are no forms.</summary>
    public int Shortest { get; }

    /// <summary>The forms of <paramref name="secrets"/>.</summary>
    public static SecretForms Of(IEnumerable<string> secrets)
    {
        var forms = new Dictionary<string, (bool Escapable, bool Wrappable, bool Alone, int Anchor)>(StringComparer.Ordinal);
        var tails = new List<(string Tail, string Whole)>();
        void Add(string text, bool escapable, bool wrappable = false, bool alone = true, int anchor = MaxAnchorLength)
        {
            var known = forms.TryGetValue(text, out var seen) ? seen : (Escapable: false, Wrappable: false, Alone: false, Anchor: MaxAnchorLength);
            forms[text] = (escapable || known.Escapable, wrappable || known.Wrappable, alone || known.Alone, Math.Min(anchor, known.Anchor));
        }

        // A wrapped form, and the same form from each block boundary up to the last tail in: a line
        // end k characters into the whole form cuts its anchor unless the anchor is shorter than k,
        // so the whole form is anchored on its first last+1 characters (a line end after them leaves
        // them whole) and the tail from the first block boundary at or after k (before last) has its
        // anchor whole; the whole form is then matched back from that tail (Find), so the characters
        // before the line end are not left in the clear. A tail is itself the encoding of a later run
        // of the secret's bytes; one too short to be told from chance only counts where the whole
        // form is found back from it.
        void AddWrappable(string text, bool escapable, int block)
        {
            var last = LastTail(text.Length, block);
            Add(text, escapable, wrappable: true, anchor: last + 1);
            for (var skip = block; skip <= last; skip += block)
            {
                Add(text[skip..], escapable, wrappable: true, alone: text.Length - skip >= MinimumBase64Length);
                tails.Add((text[skip..], text));
            }
        }

        foreach (var secret in secrets)
        {
            var bytes = Encoding.UTF8.GetBytes(secret);
            Add(Encoding.Latin1.GetString(bytes), escapable: true);
            for (var skip = 0; skip < 3; skip++)
            {
                var whole = (bytes.Length - skip) / 3 * 3;
                var base64 = whole > 0 ? Convert.ToBase64String(bytes, skip, whole) : "";
                if (base64.Length >= MinimumBase64Length)
                {
                    AddWrappable(base64, escapable: true, block: 4);
                    AddWrappable(base64.Replace('+', '-').Replace('/', '_'), escapable: false, block: 4);
                }
            }

            AddWrappable(Convert.ToHexStringLower(bytes), escapable: false, block: 2);
            AddWrappable(Convert.ToHexString(bytes), escapable: false, block: 2);
            Add(Encoding.Latin1.GetString(Encoding.Unicode.GetBytes(secret)), escapable: false);
            Add(Encoding.Latin1.GetString(Encoding.BigEndianUnicode.GetBytes(secret)), escapable: false);
        }

        if (forms.Count == 0)
        {
            return None;
        }

        var built = forms.ToDictionary(f => f.Key, f => new Form(f.Key, f.Value.Escapable, f.Value.Wrappable, f.Value.Alone, f.Value.Anchor), StringComparer.Ordinal);
        foreach (var group in tails.GroupBy(t => t.Tail, StringComparer.Ordinal))
        {
            built[group.Key].Wholes = [.. group.Select(t => built[t.Whole]).Distinct()];
        }

        return new SecretForms([.. built.Values]);
    }

    /// <summary>How far into a wrapped form of <paramref name="length"/> characters its last tail
    /// starts (0: none), so that the whole form's anchor (that many characters and one) and its
    /// shortest tail are both as long as they can be, up to what tells them from chance: the longer
    /// each, the fewer places in a text where they start by chance to be matched further.</summary>
    private static int LastTail(int length, int block)
    {
        int last = 0, best = 1;
        for (var skip = block; skip <= MaxAnchorLength && skip < length; skip += block)
        {
            if (Math.Min(Math.Min(skip + 1, length - skip), MinimumBase64Length) is var shortest && shortest >= best)
            {
                (last, best) = (skip, shortest);
            }
        }

        return last;
    }

    /// <summary>Whether <paramref name="text"/> holds one of the forms.</summary>
    public bool IsIn(ReadOnlySpan<char> text) => text.Length >= Shortest && Find(text, 0).Start >= 0;

    /// <summary>The first form in <paramref name="text"/> found at or after <paramref name="from"/>:
    /// where it starts (-1 when there is none; before <paramref name="from"/> when a wrapped form's
    /// first line was found from its next line) and how long the longest form found there is.</summary>
    /// <remarks>The longest, not the first that matches: when one secret (or one of its forms) is a
    /// prefix of another, the shorter one would leave the longer one's tail out of the match.</remarks>
    public (int Start, int Length) Find(ReadOnlySpan<char> text, int from)
    {
        var scan = Scan.Start;
        var (at, start, end) = Find(text, from, ref scan);
        return at < 0 ? (-1, 0) : (start, end - start);
    }

    /// <summary>Where the two searches for a form's start are in one text, kept by the caller
    /// across calls on that text, so that no search runs twice over the same text: a caller that
    /// goes on from just after each hit then reads the text once, not once per hit.</summary>
    private struct Scan
    {
        /// <summary>The next hit of the anchor search (-2 before the first, -1 when none is left).</summary>
        public int Anchor;

        /// <summary>The same for the search for an escape or an escape-led form's start.</summary>
        public int Escaped;

        /// <summary>Characters both searches have read: a measure of work, for tests. Counted per
        /// call, not on this shared instance, which every request's search would write.</summary>
        public long Read;

        public static Scan Start => new() { Anchor = -2, Escaped = -2 };
    }

    /// <summary>The first position at or after <paramref name="from"/> where a form is found, and
    /// the span of text the forms found there cover.</summary>
    private (int At, int Start, int End) Find(ReadOnlySpan<char> text, int from, ref Scan scan)
    {
        if (_forms.Length == 0)
        {
            return (-1, 0, 0);
        }

        for (var at = from; at < text.Length; at++)
        {
            if (scan.Anchor != -1 && scan.Anchor < at)
            {
                scan.Anchor = _anchors is null ? -1 : Counted(text, at, text[at..].IndexOfAny(_anchors), ref scan.Read);
            }

            if (scan.Escaped != -1 && scan.Escaped < at)
            {
                scan.Escaped = _escapedStarts is null ? -1 : Counted(text, at, text[at..].IndexOfAny(_escapedStarts), ref scan.Read);
            }

            at = scan.Anchor < 0 ? scan.Escaped : scan.Escaped < 0 ? scan.Anchor : Math.Min(scan.Anchor, scan.Escaped);
            if (at < 0)
            {
                break;
            }

            var rest = text[at..];
            int start = at, end = at;
            foreach (var form in _forms)
            {
                if ((rest[0] == form.Text[0] || form.EscapeLed) && form.Match(rest, out _) is > 0 and var length)
                {
                    var formStart = at;
                    foreach (var whole in form.Wholes)
                    {
                        formStart = Math.Min(formStart, WholeStart(text, at, whole, whole.Text.Length - form.Text.Length));
                    }

                    if (form.Alone || formStart < at)
                    {
                        start = Math.Min(start, formStart);
                        end = Math.Max(end, at + length);
                    }
                }
            }

            if (end > at)
            {
                return (at, start, end);
            }
        }

        return (-1, 0, 0);
    }

    /// <summary>Where <paramref name="whole"/> starts when the form found at <paramref name="at"/> is
    /// its tail from its <paramref name="skip"/>th character on (<paramref name="at"/> when it does
    /// not): a line end among those first characters cut the whole form's anchor, so it is matched
    /// from each place its first characters can start (they take up at most a line end and an escape
    /// each), as far back as it reaches to the tail.</summary>
    private static int WholeStart(ReadOnlySpan<char> text, int at, Form whole, int skip)
    {
        var farthest = at - (skip * (whole.Escapable ? MaxEscapeLength : 1)) - MaxLineEndLength;
        for (var from = Math.Max(0, farthest); from <= at - skip; from++)
        {
            if ((text[from] == whole.Text[0] || whole.EscapeLed) && whole.Match(text[from..], out _) is > 0 and var length && from + length >= at)
            {
                return from;
            }
        }

        return at;
    }

    /// <summary>Overwrites with <c>*</c>, in <paramref name="bytes"/>, every position that a form in
    /// <paramref name="text"/> (their Latin-1 reading) covers; true if any was found.</summary>
    /// <remarks>
    /// What is masked is the union of every form found at every position. Two secrets' forms can
    /// overlap (the end of one is the start of another) or nest (one is a prefix of another), so the
    /// search goes on from just after each form's start, not from its end, where a form starting
    /// inside it would be missed and its tail left in the clear. And the text is only read: masking
    /// it too would hide a form that starts inside one masked already, from this search or from the
    /// next set of forms searched in the same text (the configured secrets, then the injected token).
    /// The searches for a form's start go on from where they stopped, so a text holding a form at
    /// every position (overlapping echoes sent by an upstream) is still read once, not once per form.
    /// </remarks>
    public bool Mask(ReadOnlySpan<char> text, Span<byte> bytes) => Mask(text, bytes, out _);

    /// <summary><see cref="Mask(ReadOnlySpan{char}, Span{byte})"/>, also saying how many characters
    /// the searches for a form's start read (for tests: the text once per search, not once per form
    /// found).</summary>
    internal bool Mask(ReadOnlySpan<char> text, Span<byte> bytes, out long scanned)
    {
        var masked = false;
        var scan = Scan.Start;
        for (var (at, start, end) = Find(text, 0, ref scan); at >= 0; (at, start, end) = Find(text, at + 1, ref scan))
        {
            bytes[start..end].Fill((byte)'*');
            masked = true;
        }

        scanned = scan.Read;
        return masked;
    }

    /// <summary>The length of the longest end of <paramref name="text"/> that could be the start of a
    /// form the next piece of text completes (the text as it was sent, not as masked: a form may
    /// start inside one found already).</summary>
    public int PendingAtEnd(ReadOnlySpan<char> text)
    {
        var longest = 0;
        foreach (var form in _forms)
        {
            var start = Math.Max(0, text.Length - (form.MaxLength - 1));
            for (var at = start; text.Length - at > longest;)
            {
                var next = (form.EscapeLed ? text[at..].IndexOfAny(_escapedStarts!) : text[at..].IndexOf(form.Text[0])) is >= 0 and var i ? at + i : -1;
                if (next < 0 || text.Length - next <= longest)
                {
                    break;
                }

                form.Match(text[next..], out var open);
                if (open)
                {
                    // The earliest partial start of this form is its longest.
                    longest = text.Length - next;
                    break;
                }

                at = next + 1;
            }
        }

        return longest;
    }

    /// <summary>Where a search from <paramref name="from"/> hit (-1 for none), adding what it read
    /// to <paramref name="read"/>.</summary>
    private static int Counted(ReadOnlySpan<char> text, int from, int found, ref long read)
    {
        read += found >= 0 ? found + 1 : text.Length - from;
        return found >= 0 ? from + found : -1;
    }

    /// <summary>Characters no escaping writer (JSON, URL, HTML) ever escapes.</summary>
    private static bool IsLiteral(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.';

    /// <summary>One form of one secret, matched where its text may start.</summary>
    private sealed class Form
    {
        public Form(string text, bool escapable, bool wrappable, bool alone, int anchorLength)
        {
            Text = text;
            Escapable = escapable;
            Wrappable = wrappable;
            Alone = alone;
            EscapeLed = escapable && !IsLiteral(text[0]);
            Ambiguous = escapable && text.AsSpan().IndexOfAny(EscapeStarts) >= 0;
            var literal = escapable ? text.AsSpan().IndexOfAnyExcept(LiteralChars) : -1;
            Anchor = text[..Math.Min(anchorLength, literal < 0 ? text.Length : literal)];
            MaxLength = (escapable ? text.Sum(c => IsLiteral(c) ? 1 : MaxEscapeLength) : text.Length)
                + (wrappable ? ((text.Length / MinimumLine) + 1) * MaxLineEndLength : 0);
        }

        private static readonly SearchValues<char> LiteralChars =
            SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.");

        /// <summary>The characters every escape starts with.</summary>
        private static readonly SearchValues<char> EscapeStarts = SearchValues.Create("%\\&");

        public string Text { get; }

        /// <summary>Whether its punctuation may appear escaped.</summary>
        public bool Escapable { get; }

        /// <summary>Whether it may be cut into lines (an encoding that wrapping tools wrap).</summary>
        public bool Wrappable { get; }

        /// <summary>Whether it is a secret's form when found alone; otherwise (a short tail) only
        /// where one of its <see cref="Wholes"/> is found back from it.</summary>
        public bool Alone { get; }

        /// <summary>Whether its first character may itself appear escaped (then it has no literal anchor).</summary>
        public bool EscapeLed { get; }

        /// <summary>Whether one of its characters starts its own escapes (<c>%</c>, <c>\</c>, <c>&amp;</c>),
        /// so that where the text has that character it may be the character or the start of its
        /// escape, and only reading on tells which.</summary>
        public bool Ambiguous { get; }

        /// <summary>The wrapped forms this one is the tail of (a line end near their start cut their anchor).</summary>
        public Form[] Wholes { get; set; } = [];

        public string Anchor { get; }

        /// <summary>The most characters it can take up in text.</summary>
        public int MaxLength { get; }

        /// <summary>How long the longest reading of the form at the start of <paramref name="text"/>
        /// is, 0 when there is none; <paramref name="open"/> tells whether the text ends while a
        /// reading still could go on (a longer one, or the only one).</summary>
        public int Match(ReadOnlySpan<char> text, out bool open)
        {
            if (Ambiguous)
            {
                return MatchEveryReading(text, out open);
            }

            var length = MatchOneReading(text);
            open = length < 0;
            return Math.Max(length, 0);
        }

        /// <summary>The form read one character at a time: for a form with no <see cref="Ambiguous"/>
        /// character each position of the text allows one reading (the character itself, an escape
        /// or a line end, which start differently); 0 when it is not there, -1 when the text ends
        /// while it still could be.</summary>
        private int MatchOneReading(ReadOnlySpan<char> text)
        {
            var at = 0;
            var matched = 0;
            var sinceLineEnd = MinimumLine;
            foreach (var c in Text)
            {
                if (at == text.Length)
                {
                    return -1;
                }

                if (Wrappable && matched > 0 && sinceLineEnd >= MinimumLine && LineEndLength(text[at..]) is not 0 and var lineEnd)
                {
                    if (lineEnd < 0)
                    {
                        return -1;
                    }

                    at += lineEnd;
                    sinceLineEnd = 0;
                    if (at == text.Length)
                    {
                        return -1;
                    }
                }

                matched++;
                sinceLineEnd++;
                if (text[at] == c)
                {
                    at++;
                    continue;
                }

                if (!Escapable || IsLiteral(c))
                {
                    return 0;
                }

                var escape = EscapeLength(text[at..], c);
                if (escape <= 0)
                {
                    return escape;
                }

                at += escape;
            }

            return at;
        }

        /// <summary>The form read every way the text allows: where a character of the form is
        /// <c>&amp;</c>, <c>%</c> or <c>\</c> and the text has it, it is both that character and
        /// perhaps the start of its escape (<c>&amp;amp;</c>, <c>%25</c>, <c>\\</c>), so every
        /// reading is carried on at once, each as the place in the text it has reached — one entry
        /// per place, so the work per character is bounded by the form's length, never exponential.
        /// Such forms are the secrets as they are, never wrapped (no encoding that wraps writes these).</summary>
        private int MatchEveryReading(ReadOnlySpan<char> text, out bool open)
        {
            open = false;
            // A reading's place is at most MaxLength into the text, so there are at most that many.
            var size = Math.Min(MaxLength, text.Length) + 1;
            int[]? rented = null;
            Span<int> buffer = 2 * size <= 256 ? stackalloc int[256] : (rented = ArrayPool<int>.Shared.Rent(2 * size));
            var places = buffer[..size];
            var next = buffer[size..(2 * size)];
            places[0] = 0;
            var count = 1;
            foreach (var c in Text)
            {
                var nextCount = 0;
                foreach (var at in places[..count])
                {
                    if (at == text.Length)
                    {
                        open = true;
                        continue;
                    }

                    if (text[at] == c)
                    {
                        Add(next, ref nextCount, at + 1);
                    }

                    if (!IsLiteral(c) && EscapeLength(text[at..], c) is not 0 and var escape)
                    {
                        if (escape < 0)
                        {
                            open = true;
                        }
                        else
                        {
                            Add(next, ref nextCount, at + escape);
                        }
                    }
                }

                var swap = places;
                places = next;
                next = swap;
                count = nextCount;
                if (count == 0)
                {
                    break;
                }
            }

            var longest = count == 0 ? 0 : Max(places[..count]);
            if (rented is not null)
            {
                ArrayPool<int>.Shared.Return(rented);
            }

            return longest;

            static void Add(Span<int> places, ref int count, int place)
            {
                if (!places[..count].Contains(place))
                {
                    places[count++] = place;
                }
            }

            static int Max(ReadOnlySpan<int> places)
            {
                var max = 0;
                foreach (var place in places)
                {
                    max = Math.Max(max, place);
                }

                return max;
            }
        }

        /// <summary>How long a line end is at the start of <paramref name="text"/> — LF, CR, CRLF, or
        /// <c>\n</c>, <c>\r</c>, <c>\r\n</c> in a JSON string; 0 when none is, -1 when the text ends
        /// while a longer one still could be.</summary>
        private static int LineEndLength(ReadOnlySpan<char> text)
        {
            switch (text[0])
            {
                case '\n':
                    return 1;
                case '\r':
                    return text.Length == 1 ? -1 : text[1] == '\n' ? 2 : 1;
                case '\\':
                    if (text.Length == 1)
                    {
                        return -1;
                    }

                    if (text[1] == 'n')
                    {
                        return 2;
                    }

                    if (text[1] != 'r')
                    {
                        return 0;
                    }

                    return text.Length < 4 ? (text.Length == 2 || text[2] == '\\' ? -1 : 2) : text[2] == '\\' && text[3] == 'n' ? 4 : 2;
                default:
                    return 0;
            }
        }

        /// <summary>How long an escape of <paramref name="c"/> is at the start of
        /// <paramref name="text"/>; 0 when none is, -1 when the text ends while one still could be.</summary>
        private static int EscapeLength(ReadOnlySpan<char> text, char c)
        {
            switch (text[0])
            {
                case '%':
                    // URL: one byte as two hex digits, either case.
                    return Number(text, 1, 16, c, minDigits: 2, maxDigits: 2, end: null);
                case '+' when c == ' ':
                    // URL form encoding (WebUtility.UrlEncode, HttpUtility.UrlEncode).
                    return 1;
                case '\\' when c < 0x80:
                    if (text.Length == 1)
                    {
                        return -1;
                    }

                    // JSON: \/ \" \\, or \u and four hex digits.
                    return text[1] == c && c is '/' or '"' or '\\' ? 2
                        : text[1] == 'u' ? Number(text, 2, 16, c, minDigits: 4, maxDigits: 4, end: null)
                        : 0;
                case '&' when c < 0x80:
                    // HTML: &#43; or &#x2B; (any case, leading zeros), or the names encoders use.
                    if (text.Length < 3)
                    {
                        return text.Length == 1 || text[1] == '#' || Named(c) is { } prefix && prefix.AsSpan().StartsWith(text) ? -1 : 0;
                    }

                    if (text[1] != '#')
                    {
                        return Named(c) is not { } name ? 0
                            : text.StartsWith(name, StringComparison.Ordinal) ? name.Length
                            : name.AsSpan().StartsWith(text) ? -1 : 0;
                    }

                    return text[2] is 'x' or 'X' ? Number(text, 3, 16, c, minDigits: 1, maxDigits: MaxEscapeLength - 4, end: ';')
                        : Number(text, 2, 10, c, minDigits: 1, maxDigits: MaxEscapeLength - 3, end: ';');
                default:
                    return 0;
            }
        }

        /// <summary>Digits from <paramref name="start"/> whose value is <paramref name="c"/>, then
        /// <paramref name="end"/> if given: the escape's length, 0, or -1 if the text ends first.</summary>
        private static int Number(ReadOnlySpan<char> text, int start, int radix, char c, int minDigits, int maxDigits, char? end)
        {
            var value = 0;
            var at = start;
            while (at < text.Length && at - start < maxDigits && Digit(text[at], radix) is >= 0 and var digit)
            {
                value = (value * radix) + digit;
                at++;
                if (value > c)
                {
                    return 0;
                }
            }

            var digits = at - start;
            if (at == text.Length && (digits < maxDigits || end is not null))
            {
                return -1;
            }

            if (digits < minDigits || value != c)
            {
                return 0;
            }

            if (end is { } terminator)
            {
                return text[at] == terminator ? at + 1 : 0;
            }

            return at;
        }

        /// <summary>The named character reference HTML encoders write for <paramref name="c"/>, if any.</summary>
        private static string? Named(char c) => c switch
        {
            '"' => "&quot;",
            '&' => "&amp;",
            '\'' => "&apos;",
            '<' => "&lt;",
            '>' => "&gt;",
            _ => null,
        };

        private static int Digit(char c, int radix) => c switch
        {
            >= '0' and <= '9' => c - '0',
            >= 'a' and <= 'f' when radix == 16 => c - 'a' + 10,
            >= 'A' and <= 'F' when radix == 16 => c - 'A' + 10,
            _ => -1,
        };
    }
}
