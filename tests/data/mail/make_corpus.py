#!/usr/bin/python3
"""make_corpus.py -- writes the welcome-email corpus for the mail scrubber
tests: each NAME.eml has a NAME.expect listing the planted secrets (none may
survive scrubbing, in raw or decoded form) and the text that must survive.
The .eml files are checked in; rerun this after editing it."""
import base64
import os
import quopri
from email.header import Header

HERE = os.path.dirname(os.path.abspath(__file__))


def b64(data):
    s = base64.b64encode(data).decode()
    return "\n".join(s[i:i + 76] for i in range(0, len(s), 76)) + "\n"


def qp(data):
    return quopri.encodestring(data).decode()


def head(subject, extra="", charset=None):
    if charset:
        subject = Header(subject, charset).encode()
    return ("From: PBX <pbx@pbx.example.com>\n"
            "To: Alice Smith <alice@example.com>\n"
            "Subject: %s\n"
            "Date: Fri, 27 Nov 2026 03:00:00 +0000\n"
            "Message-ID: <%s@pbx.example.com>\n"
            "MIME-Version: 1.0\n%s") % (subject, "{ID}", extra)


def single(subject, ctype, charset, cte, body, hcharset=None):
    return head(subject, "Content-Type: %s; charset=%s\n"
                "Content-Transfer-Encoding: %s\n\n" % (ctype, charset, cte),
                hcharset) + body


def encode(text, charset, cte):
    raw = text.encode(charset)
    if cte == "base64":
        return b64(raw)
    if cte == "quoted-printable":
        return qp(raw)
    return raw.decode("latin-1")  # 7bit/8bit: bytes as they are


EN_WELCOME = """Hello Alice Smith,

Welcome to the phone system. Your extension number is 1001.

Web Client URL: https://pbx.example.com:5001/webclient
Username: 1001
Password: Xq7Secret1001
Voicemail PIN: 482913

To configure your phone app, use this link:
https://pbx.example.com:5001/provisioning/q8w7e6r5t4y3secret/1001.xml

Download the desktop app: https://pbx.example.com:5001/electron/windows/3CXDesktopApp.msi

Regards,
Your PBX administrator
"""

EN_NEXTLINE = """Hello Bob,

Your extension 1002 is ready.
Your web client password
    Nm4Secret1002
Your voicemail PIN
    771204

Regards,
Your PBX administrator
"""

EN_SENTENCE = """Hello Carol,

Your password is Kz8Secret1003. You can change it after logging in.
Log in with the password "Lw2Secret1004" and your extension number 1003.
Your voicemail PIN is 660915.

Regards,
Your PBX administrator
"""

EN_REMINDER = """Hello Dave,

You asked for a password reminder.
Password: Rm5Secret1005
If you did not ask for this, tell your administrator.
"""

# Soft line break in the middle of the secret: decoding must rejoin it.
EN_QP_SPLIT = """Hello Erin,=0A=0AYour extension number is 1006.=0APassword: Qp3Sec=
ret1006=0AVoicemail PIN: 55=
0917=0A=0ARegards,=0AYour PBX administrator=0A
"""

EN_HTML = """<html><body>
<p>Hello Frank,</p>
<p>Welcome! Your extension number is 1007.</p>
<table>
<tr><td>Password:</td><td><b>Ht</b>ml7Sec<span>ret1007</span></td></tr>
<tr><td>PIN:</td><td>&#53;50123</td></tr>
<tr><td>Second password:</td><td>Amp&amp;Secret1008</td></tr>
</table>
<p>Your password is &#69;nt9Secret1009.</p>
<p><a href="https://pbx.example.com:5001/provisioning/htmlprov1007secret/1007.xml">Provision your phone</a></p>
<p>Regards,<br>Your PBX administrator</p>
</body></html>
"""

JA_UTF8 = """山田 太郎 様

電話システムへようこそ。内線番号は 2001 です。
Webクライアント: https://pbx.example.com:5001/webclient
パスワード：Jp1Secret2001
ボイスメールPIN：302118
プロビジョニング: https://pbx.example.com:5001/provisioning/jpprov2001secret/2001.xml

よろしくお願いいたします。
"""

JA_2022 = """佐藤 花子 様

内線番号 2002 の設定が完了しました。
パスワード：Jp2Secret2002
パスワードは Jp3Secret2003 です。
よろしくお願いいたします。
"""

JA_SJIS = """鈴木 一郎 様

内線 2004 のアカウント情報です。
パスワード: Jp4Secret2004
暗証番号：445566
以上です。
"""

JA_EUC = """高橋 次郎 様

内線 2005 のご案内です。
パスワード
Jp5Secret2005
よろしくお願いいたします。
"""

LATIN1 = """Hallo Jürgen,

Willkommen! Ihre Nebenstelle ist 3001.
Password: Lt9Secret3001
Viele Grüße
Ihr Administrator
"""

CONFIG_XML = """<?xml version="1.0"?>
<Config><Extension>1001</Extension><AuthPassword>Cf8Secret4001</AuthPassword>
<ProvisioningUrl>https://pbx.example.com:5001/provisioning/cfgprov4001secret/</ProvisioningUrl></Config>
"""


def mixed_with_attachments():
    b = "==att-boundary=="
    png = b"\x89PNG\r\n\x1a\n" + b"QrSecret4002" + bytes(range(256))
    return head("Welcome to your new extension 1001",
                'Content-Type: multipart/mixed; boundary="%s"\n\n' % b) + (
        "This is a multi-part message in MIME format.\n"
        "--%s\nContent-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 7bit\n\n"
        "Hello Alice,\nYour extension number is 1001.\n"
        "Password: At1Secret4003\nThe config file is attached.\n\n"
        "--%s\nContent-Type: application/octet-stream; name=\"1001.3cxconfig\"\n"
        "Content-Disposition: attachment; filename=\"1001.3cxconfig\"\n"
        "Content-Transfer-Encoding: base64\n\n%s\n"
        "--%s\nContent-Type: image/png; name=\"qrcode.png\"\n"
        "Content-Disposition: inline; filename=\"qrcode.png\"\n"
        "Content-ID: <qr@pbx>\nContent-Transfer-Encoding: base64\n\n%s\n"
        "--%s\nContent-Type: application/pdf; name=\"manual.pdf\"\n"
        "Content-Disposition: attachment; filename=\"manual.pdf\"\n"
        "Content-Transfer-Encoding: base64\n\n%s\n--%s--\n") % (
        b, b, b64(CONFIG_XML.encode()), b, b64(png), b,
        b64(b"%PDF-1.4 user manual keep-this-manual"), b)


def nested():
    o, a, r = "==outer==", "==alt==", "==fwd=="
    inner = ("From: pbx@pbx.example.com\nTo: helpdesk@example.com\n"
             "Subject: Password reminder\nMIME-Version: 1.0\n"
             "Content-Type: text/plain; charset=utf-8\n"
             "Content-Transfer-Encoding: quoted-printable\n\n"
             "Forwarded note.\nPassword: Fw7Secret5001\nEnd of forwarded note.\n")
    html = ("<div>Nested hello.</div><div>Password:&nbsp;<i>Nh2Secret5002</i></div>"
            "<div>Nested regards.</div>")
    return head("Welcome (nested)",
                'Content-Type: multipart/mixed; boundary="%s"\n\n' % o) + (
        "--%s\nContent-Type: multipart/alternative; boundary=\"%s\"\n\n"
        "--%s\nContent-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: base64\n\n%s\n"
        "--%s\nContent-Type: text/html; charset=utf-8\n"
        "Content-Transfer-Encoding: quoted-printable\n\n%s\n--%s--\n\n"
        "--%s\nContent-Type: message/rfc822\n\n%s\n--%s--\n") % (
        o, a, a, b64("Nested hello.\nPIN: 918273\nNested regards.\n".encode()),
        a, qp(html.encode()), a, o, inner, o)


JA_HTML = """<html><body><p>田中 様</p>
<p>ようこそ。内線番号は 2006 です。</p>
<p>パスワード&#xFF1A;<b>Jh1</b>Secret2006</p>
<p>暗証番号は「<span>7788</span>99」です。</p>
<p><img src="cid:image001"></p>
<p>よろしくお願いいたします。</p></body></html>
"""

EN_REMINDER_HTML = """<html><body>
<p>Hello Grace,</p>
<p>Your password is <strong>Rh2Secret1010</strong>.</p>
<p><a href="https://pbx.example.com:5001/webclient/#/login?user=1010&amp;pass=Up3Secret1011">Open the web client</a></p>
<p>Thank you.</p>
</body></html>
"""


def ja_html_related():
    a, r = "==alt-ja==", "==rel-ja=="
    png = b"\x89PNG\r\n\x1a\nQrJaSecret2007" + bytes(range(64))
    plain = "田中 様\n\nようこそ。内線番号は 2006 です。\nパスワード：Jh1Secret2006\n" \
        "暗証番号は「778899」です。\nよろしくお願いいたします。\n"
    return head("ようこそ 内線 2006",
                'Content-Type: multipart/related; boundary="%s"\n\n' % r,
                "iso-2022-jp") + (
        "--%s\nContent-Type: multipart/alternative; boundary=\"%s\"\n\n"
        "--%s\nContent-Type: text/plain; charset=ISO-2022-JP\n"
        "Content-Transfer-Encoding: 7bit\n\n%s\n"
        "--%s\nContent-Type: text/html; charset=ISO-2022-JP\n"
        "Content-Transfer-Encoding: quoted-printable\n\n%s\n--%s--\n\n"
        "--%s\nContent-Type: image/png; name=\"image001.png\"\n"
        "Content-ID: <image001>\nContent-Disposition: inline; filename=\"image001.png\"\n"
        "Content-Transfer-Encoding: base64\n\n%s\n--%s--\n") % (
        r, a, a, plain.encode("iso-2022-jp").decode("latin-1"), a,
        qp(JA_HTML.encode("iso-2022-jp")), a, r, b64(png), r)


# HTML that a browser reads differently from a naive tag stripper (issue 12
# #17): a reference without ';', comments closed by "<!-->" and "--!>",
# quotes inside bogus comments (they end at the first '>'), and labels split
# by invisible characters written as named references.
EN_HTML_BROWSER = """<html><body>
<p>Hello Henry,</p>
<p>Your extension number is 1012.</p>
<p>&#80assword: Np1Secret1012</p>
<!-->
<p>Password: Ec2Secret1013</p>
<!-- note --!>
<p>Password: Bang3Secret1014</p>
<!x "><p>Password: Bq4Secret1015</p><p>"quoted</p>
<?php '><p>Password: Pi5Secret1016</p><p>'quoted</p>
<p>Pass&ZeroWidthSpace;word: Zw6Secret1017</p>
<p>Password&NoBreak;: Nb7Secret1018</p>
<p>Pass&shy;word:&nbsp;Sh8Secret1019</p>
<p>Web&nbsp;Client&nbsp;Password: Wc9Secret1020</p>
<p>Pass&#x200B;word&colon; Hx0Secret1021</p>
<p><img alt="Password: Alt1Secret1022" src="cid:logo"></p>
<p>Regards,<br>Your PBX administrator</p>
</body></html>
"""

# Wordings the first rules missed (issue 12 #15), one class per message:
# quoted values, separators other than ':', other labels, and passwords
# holding < or " (only their first part used to go).
EN_QUOTES = """Hello Ivan,

Your extension number is 1013.
Password: "Dq1Secret1013"
Web Client Password: “Cq2Secret1014”
PIN: '551301'
Password: ‘Sq3Secret1015’
Password: <Aq4Secret1016>
Password: «Gq5Secret1017»
Your password is "Tw7Part1018 Pa8Part1018".
Log in with the password 'Sg6Secret1019'.

Regards,
Your PBX administrator
"""

EN_SEPARATORS = """Hello Judy,

Your extension number is 1020.
Password\tTb1Secret1020
Password    Sp2Secret1021
Password - Dh3Secret1022
Password – En4Secret1023
PIN\t552201
Voicemail PIN  552202
Password = Eq5Secret1024

Regards,
Your PBX administrator
"""

EN_LABELS = """Hello Karl,

Your extension number is 1025.
PW: Pw1Secret1025
Pwd: Pd2Secret1026
WebClientPassword: Wc3Secret1027
Web Client Password  Wc4Secret1028
SIP.Password = Sp5Secret1029
VoicemailPIN: 552301
Extension passcode\tEp6Secret1030

Regards,
Your PBX administrator
"""

EN_PARTIAL = """Hello Lena,

Your extension number is 1031.
Password: Pa1rt<Lt2rt1031
Password: Qa1rt"Qt2rt1032
Your password is Se1nt<Se2nt1033.
Web Client Password: "Qu1ot"Qu2ot1034"

Regards,
Your PBX administrator
"""

EN_PARTIAL_HTML = """<html><body>
<p>Hello Mona,</p>
<p>Your extension number is 1035.</p>
<p>Password: Ha1rt&lt;Hb2rt1035</p>
<p>Password: Hc1rt&quot;Hd2rt1036</p>
<p>PW&nbsp;-&nbsp;&quot;He1rt&gt;Hf2rt1037&quot;</p>
<p>Regards,</p>
</body></html>
"""

JA_WORDING = """山田 様

内線番号は 2010 です。
パスワード：「Jq1Secret2010」
ログインパスワード：Jl2Secret2011
【パスワード】Jb3Secret2012
パスワード　Js4Secret2013
暗証番号　　552401
ＰＩＮコード：552402
Webクライアントパスワード＝Jw5Secret2014
パスワード − Jd6Secret2015
初期パスワード：『Jk7Secret2016』
パスワードは “Jc8Secret2017” です。
パスワード：Jp9a<Jp9b"2018
よろしくお願いいたします。
"""

JA_WORDING_SECRETS = ["Jq1Secret2010", "Jl2Secret2011", "Jb3Secret2012",
                      "Js4Secret2013", "552401", "552402", "Jw5Secret2014",
                      "Jd6Secret2015", "Jk7Secret2016", "Jc8Secret2017",
                      "Jp9a", "Jp9b"]
JA_WORDING_KEEP = ["内線番号は 2010 です。",
                   "よろしくお願いいたします。"]

MESSAGES = [
    ("en_plain_7bit", single("Welcome to your new extension 1001",
                             "text/plain", "us-ascii", "7bit", EN_WELCOME),
     ["Xq7Secret1001", "482913", "q8w7e6r5t4y3secret"],
     ["Your extension number is 1001", "Username: 1001", "Password: ",
      "https://pbx.example.com:5001/webclient",
      "https://pbx.example.com:5001/electron/windows/3CXDesktopApp.msi",
      "/provisioning/", "Regards,"]),
    ("en_next_line_b64", single("Your new extension 1002", "text/plain",
                                "utf-8", "base64",
                                encode(EN_NEXTLINE, "utf-8", "base64")),
     ["Nm4Secret1002", "771204"],
     ["Your extension 1002 is ready.", "Your web client password",
      "Regards,"]),
    ("en_sentence_qp", single("Your extension 1003", "text/plain", "utf-8",
                              "quoted-printable",
                              encode(EN_SENTENCE, "utf-8", "quoted-printable")),
     ["Kz8Secret1003", "Lw2Secret1004", "660915"],
     ["You can change it after logging in.", "and your extension number 1003",
      "Regards,"]),
    ("en_reminder_8bit", single("Password reminder", "text/plain", "utf-8",
                                "8bit", EN_REMINDER),
     ["Rm5Secret1005"], ["You asked for a password reminder.",
                         "If you did not ask for this"]),
    ("en_qp_soft_break", single("Welcome, extension 1006", "text/plain",
                                "utf-8", "quoted-printable", EN_QP_SPLIT),
     ["Qp3Secret1006", "550917"],
     ["Your extension number is 1006.", "Regards,"]),
    ("en_html_split", single("Welcome, extension 1007", "text/html", "utf-8",
                             "quoted-printable",
                             encode(EN_HTML, "utf-8", "quoted-printable")),
     ["Html7Secret1007", "550123", "Amp&Secret1008", "Amp&amp;Secret1008",
      "Ent9Secret1009", "htmlprov1007secret"],
     ["Your extension number is 1007.", "Provision your phone", "Regards,"]),
    ("ja_utf8_b64", single("内線 2001 のご案内", "text/plain", "utf-8",
                           "base64", encode(JA_UTF8, "utf-8", "base64"),
                           "utf-8"),
     ["Jp1Secret2001", "302118", "jpprov2001secret"],
     ["電話システムへようこそ。内線番号は 2001 です。",
      "パスワード：", "よろしくお願いいたします。"]),
    ("ja_iso2022jp_7bit", single("内線 2002 の設定完了", "text/plain",
                                 "ISO-2022-JP", "7bit",
                                 encode(JA_2022, "iso-2022-jp", "7bit"),
                                 "iso-2022-jp"),
     ["Jp2Secret2002", "Jp3Secret2003"],
     ["内線番号 2002 の設定が完了しました。", "よろしくお願いいたします。"]),
    ("ja_sjis_b64", single("内線 2004 アカウント", "text/plain", "Shift_JIS",
                           "base64", encode(JA_SJIS, "shift_jis", "base64"),
                           "shift_jis"),
     ["Jp4Secret2004", "445566"],
     ["内線 2004 のアカウント情報です。", "以上です。"]),
    ("ja_eucjp_qp", single("内線 2005 のご案内", "text/plain", "EUC-JP",
                           "quoted-printable",
                           encode(JA_EUC, "euc_jp", "quoted-printable"),
                           "euc-jp"),
     ["Jp5Secret2005"],
     ["内線 2005 のご案内です。", "よろしくお願いいたします。"]),
    ("latin1_qp", single("Willkommen, Nebenstelle 3001", "text/plain",
                         "ISO-8859-1", "quoted-printable",
                         encode(LATIN1, "latin-1", "quoted-printable")),
     ["Lt9Secret3001"], ["Hallo Jürgen,", "Viele Grüße"]),
    ("subject_encoded_word", single("Your password: Sb6Secret3002",
                                    "text/plain", "utf-8", "7bit",
                                    "Hello,\nSee the subject.\n", "utf-8"),
     ["Sb6Secret3002"], ["See the subject."]),
    ("attachments_mixed", mixed_with_attachments(),
     ["Cf8Secret4001", "cfgprov4001secret", "QrSecret4002", "At1Secret4003"],
     ["Your extension number is 1001.", "The config file is attached.",
      "keep-this-manual"]),
    ("ja_html_related_iso2022jp", ja_html_related(),
     ["Jh1Secret2006", "778899", "QrJaSecret2007"],
     ["ようこそ。内線番号は 2006 です。", "よろしくお願いいたします。",
      "田中 様"]),
    ("en_reminder_html_b64", single("Password reminder", "text/html", "utf-8",
                                    "base64",
                                    encode(EN_REMINDER_HTML, "utf-8", "base64")),
     ["Rh2Secret1010", "Up3Secret1011"],
     ["Hello Grace,", "Open the web client", "Thank you.",
      "https://pbx.example.com:5001/webclient/#/login?user=1010"]),
    ("en_html_browser_view", single("Welcome, extension 1012", "text/html",
                                    "utf-8", "quoted-printable",
                                    encode(EN_HTML_BROWSER, "utf-8",
                                           "quoted-printable")),
     ["Np1Secret1012", "Ec2Secret1013", "Bang3Secret1014", "Bq4Secret1015",
      "Pi5Secret1016", "Zw6Secret1017", "Nb7Secret1018", "Sh8Secret1019",
      "Wc9Secret1020", "Hx0Secret1021", "Alt1Secret1022"],
     ["Your extension number is 1012.", "Hello Henry,", "Regards,"]),
    ("en_wording_quotes", single("Welcome, extension 1013", "text/plain",
                                 "utf-8", "quoted-printable",
                                 encode(EN_QUOTES, "utf-8",
                                        "quoted-printable")),
     ["Dq1Secret1013", "Cq2Secret1014", "551301", "Sq3Secret1015",
      "Aq4Secret1016", "Gq5Secret1017", "Tw7Part1018", "Pa8Part1018",
      "Sg6Secret1019"],
     ["Your extension number is 1013.", "Regards,"]),
    ("en_wording_separators", single("Welcome, extension 1020", "text/plain",
                                     "us-ascii", "7bit", EN_SEPARATORS.replace(
                                         "\u2013", "-")),
     ["Tb1Secret1020", "Sp2Secret1021", "Dh3Secret1022", "En4Secret1023",
      "552201", "552202", "Eq5Secret1024"],
     ["Your extension number is 1020.", "Regards,"]),
    ("en_wording_separators_utf8", single("Welcome, extension 1020",
                                          "text/plain", "utf-8", "base64",
                                          encode(EN_SEPARATORS, "utf-8",
                                                 "base64")),
     ["Tb1Secret1020", "Sp2Secret1021", "Dh3Secret1022", "En4Secret1023",
      "552201", "552202", "Eq5Secret1024"],
     ["Your extension number is 1020.", "Regards,"]),
    ("en_wording_labels", single("Welcome, extension 1025", "text/plain",
                                 "us-ascii", "7bit", EN_LABELS),
     ["Pw1Secret1025", "Pd2Secret1026", "Wc3Secret1027", "Wc4Secret1028",
      "Sp5Secret1029", "552301", "Ep6Secret1030"],
     ["Your extension number is 1025.", "Regards,"]),
    ("en_wording_partial", single("Password reminder", "text/plain",
                                  "us-ascii", "7bit", EN_PARTIAL),
     ["Pa1rt", "Lt2rt1031", "Qa1rt", "Qt2rt1032", "Se1nt", "Se2nt1033",
      "Qu1ot", "Qu2ot1034"],
     ["Your extension number is 1031.", "Regards,"]),
    ("en_wording_partial_html", single("Password reminder", "text/html",
                                       "utf-8", "7bit", EN_PARTIAL_HTML),
     ["Ha1rt", "Hb2rt1035", "Hc1rt", "Hd2rt1036", "He1rt", "Hf2rt1037"],
     ["Your extension number is 1035.", "Regards,"]),
    ("ja_wording_utf8_b64", single("\u5185\u7dda 2010 \u306e\u3054\u6848\u5185",
                                   "text/plain", "utf-8", "base64",
                                   encode(JA_WORDING, "utf-8", "base64"),
                                   "utf-8"),
     JA_WORDING_SECRETS, JA_WORDING_KEEP),
    ("ja_wording_iso2022jp", single("\u5185\u7dda 2010 \u306e\u3054\u6848\u5185",
                                    "text/plain", "ISO-2022-JP", "7bit",
                                    encode(JA_WORDING, "iso-2022-jp", "7bit"),
                                    "iso-2022-jp"),
     JA_WORDING_SECRETS, JA_WORDING_KEEP),
    ("nested_forward", nested(),
     ["Fw7Secret5001", "Nh2Secret5002", "918273"],
     ["Nested hello.", "Nested regards.", "Forwarded note.",
      "End of forwarded note."]),
]


def main():
    for name, msg, secrets, keep in MESSAGES:
        msg = msg.replace("{ID}", name)
        with open(os.path.join(HERE, name + ".eml"), "wb") as f:
            f.write(msg.replace("\n", "\r\n").encode("latin-1"))
        with open(os.path.join(HERE, name + ".expect"), "w",
                  encoding="utf-8") as f:
            for s in secrets:
                f.write("secret %s\n" % s)
            for k in keep:
                f.write("keep %s\n" % k)


if __name__ == "__main__":
    main()
