"""The data messages and their pinned wire bytes (the cases of test_wire_pinned.py)."""

from __future__ import annotations

import pytest

from ucp_dtn.ucp import (
    DataDelete,
    DataEntry,
    DataFreeSpace,
    DataFreeSpaceReply,
    DataGet,
    DataGetReply,
    DataHeld,
    DataItem,
    DataList,
    DataListReply,
    DataPut,
    DataReplicate,
    DataReply,
    DataStatus,
)

from .pinned_values import (
    AT,
    BROKER,
    CLIENT,
    DATASTORE,
    DIGEST,
    JOB_ID,
)

PINNED_DATA_MESSAGES = [
    pytest.param(
        DataPut(7, "survey/a.wav", b"RIFF", AT, job_id=JOB_ID, reply_to=CLIENT),
        "a8617601617468646174612d7075746a726571756573742d696407687265706c792d74"
        "6f781964746e3a2f2f6c6170746f702d372f7563702f636c69656e74646e616d656c73"
        "75727665792f612e77617664646174614452494646626174fb41d954fc40200000666a"
        "6f622d69645012345678123456781234567812345678",
        id="data-put-full",
    ),
    pytest.param(
        DataPut(8, "survey/b.wav", b"", AT),
        "a6617601617468646174612d7075746a726571756573742d696408646e616d656c7375"
        "727665792f622e776176646461746140626174fb41d954fc40200000",
        id="data-put-minimal",
    ),
    pytest.param(
        DataReply(7, DataStatus.STALE, detail="older than stored", count=1),
        "a661760161746a646174612d7265706c796a726571756573742d696407667374617475"
        "73056664657461696c716f6c646572207468616e2073746f72656465636f756e7401",
        id="data-reply-full",
    ),
    pytest.param(
        DataReply(8, DataStatus.OK),
        "a461760161746a646174612d7265706c796a726571756573742d6964086673746174757300",
        id="data-reply-minimal",
    ),
    pytest.param(
        DataGet(9, "survey/*", cursor="survey/b.wav", max_bytes=4096, reply_to=CLIENT),
        "a7617601617468646174612d6765746a726571756573742d696409687265706c792d74"
        "6f781964746e3a2f2f6c6170746f702d372f7563702f636c69656e7465717565727968"
        "7375727665792f2a696d61782d627974657319100066637572736f726c737572766579"
        "2f622e776176",
        id="data-get-full",
    ),
    pytest.param(
        DataGet(10, "survey"),
        "a5617601617468646174612d6765746a726571756573742d69640a6571756572796673"
        "7572766579696d61782d62797465731a00100000",
        id="data-get-minimal",
    ),
    pytest.param(
        DataGetReply(
            9,
            DataStatus.OK,
            items=(
                DataItem("survey/a.wav", b"RIFF", AT, job_id=JOB_ID),
                DataItem("survey/b.wav", b"", AT + 1),
            ),
            cursor="survey/c.wav",
            detail="2 of 5",
        ),
        "a761760161746e646174612d6765742d7265706c796a726571756573742d6964096673"
        "746174757300656974656d7382a4646e616d656c7375727665792f612e776176646461"
        "74614452494646626174fb41d954fc40200000666a6f622d6964501234567812345678"
        "1234567812345678a3646e616d656c7375727665792f622e7761766464617461406261"
        "74fb41d954fc4060000066637572736f726c7375727665792f632e7761766664657461"
        "696c6632206f662035",
        id="data-get-reply-full",
    ),
    pytest.param(
        DataGet(12, "survey", have=(DIGEST,)),
        "a6617601617468646174612d6765746a726571756573742d69640c6571756572796673"
        "7572766579696d61782d62797465731a00100000646861766581582000010203040506"
        "0708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        id="data-get-have",
    ),
    pytest.param(
        DataGetReply(
            12,
            DataStatus.OK,
            items=(
                DataItem("survey/a.wav", b"", AT, digest=DIGEST, cached=True),
                DataItem("survey/b.wav", b"RIFF", AT + 1, digest=DIGEST),
            ),
        ),
        "a561760161746e646174612d6765742d7265706c796a726571756573742d69640c6673"
        "746174757300656974656d7382a5646e616d656c7375727665792f612e776176646461"
        "746140626174fb41d954fc40200000666469676573745820000102030405060708090a"
        "0b0c0d0e0f101112131415161718191a1b1c1d1e1f66636163686564f5a4646e616d65"
        "6c7375727665792f622e77617664646174614452494646626174fb41d954fc40600000"
        "666469676573745820000102030405060708090a0b0c0d0e0f10111213141516171819"
        "1a1b1c1d1e1f",
        id="data-get-reply-digests",
    ),
    pytest.param(
        DataGetReply(10, DataStatus.NOT_FOUND),
        "a461760161746e646174612d6765742d7265706c796a726571756573742d69640a6673746174757301",
        id="data-get-reply-minimal",
    ),
    pytest.param(
        DataList(
            11,
            prefix="survey/*",
            job_id=JOB_ID,
            page_size=50,
            cursor="survey/b.wav",
            reply_to=CLIENT,
        ),
        "a8617601617469646174612d6c6973746a726571756573742d69640b687265706c792d"
        "746f781964746e3a2f2f6c6170746f702d372f7563702f636c69656e7469706167652d"
        "73697a65183266707265666978687375727665792f2a666a6f622d6964501234567812"
        "345678123456781234567866637572736f726c7375727665792f622e776176",
        id="data-list-full",
    ),
    pytest.param(
        DataList(12),
        "a4617601617469646174612d6c6973746a726571756573742d69640c69706167652d73697a651903e8",
        id="data-list-minimal",
    ),
    pytest.param(
        DataListReply(
            11,
            DataStatus.OK,
            entries=(
                DataEntry("survey/a.wav", 4, AT, job_id=JOB_ID, holder=DATASTORE),
                DataEntry("survey/b.wav", 0, AT + 1),
            ),
            cursor="survey/c.wav",
            detail="page 1",
        ),
        "a761760161746f646174612d6c6973742d7265706c796a726571756573742d69640b66"
        "7374617475730067656e747269657382a5646e616d656c7375727665792f612e776176"
        "6473697a6504626174fb41d954fc40200000666a6f622d696450123456781234567812"
        "3456781234567866686f6c646572781b64746e3a2f2f73746f72652d322f7563702f64"
        "61746173746f7265a3646e616d656c7375727665792f622e7761766473697a65006261"
        "74fb41d954fc4060000066637572736f726c7375727665792f632e7761766664657461"
        "696c66706167652031",
        id="data-list-reply-full",
    ),
    pytest.param(
        DataListReply(12, DataStatus.UNAVAILABLE),
        "a461760161746f646174612d6c6973742d7265706c796a726571756573742d69640c6673746174757304",
        id="data-list-reply-minimal",
    ),
    pytest.param(
        DataDelete(13, name="survey/*", reply_to=CLIENT),
        "a661760161746b646174612d64656c6574656a726571756573742d69640d687265706c"
        "792d746f781964746e3a2f2f6c6170746f702d372f7563702f636c69656e74646e616d"
        "65687375727665792f2a6b6b6565702d726573756c74f5",
        id="data-delete-by-name",
    ),
    pytest.param(
        DataDelete(14, job_id=JOB_ID, keep_result=False),
        "a561760161746b646174612d64656c6574656a726571756573742d69640e666a6f622d"
        "696450123456781234567812345678123456786b6b6565702d726573756c74f4",
        id="data-delete-by-job",
    ),
    pytest.param(
        DataFreeSpace(15, reply_to=CLIENT),
        "a461760161746f646174612d667265652d73706163656a726571756573742d69640f68"
        "7265706c792d746f781964746e3a2f2f6c6170746f702d372f7563702f636c69656e74",
        id="data-free-space-full",
    ),
    pytest.param(
        DataFreeSpace(16),
        "a361760161746f646174612d667265652d73706163656a726571756573742d696410",
        id="data-free-space-minimal",
    ),
    pytest.param(
        DataFreeSpaceReply(15, DATASTORE, free=10**9, used=2**20, items=3, quota=2 * 10**9),
        "a8617601617475646174612d667265652d73706163652d7265706c796a726571756573"
        "742d69640f646e6f6465781b64746e3a2f2f73746f72652d322f7563702f6461746173"
        "746f726564667265651a3b9aca0064757365641a00100000656974656d73036571756f"
        "74611a77359400",
        id="data-free-space-reply-full",
    ),
    pytest.param(
        DataFreeSpaceReply(16, DATASTORE, free=0, used=0),
        "a7617601617475646174612d667265652d73706163652d7265706c796a726571756573"
        "742d696410646e6f6465781b64746e3a2f2f73746f72652d322f7563702f6461746173"
        "746f7265646672656500647573656400656974656d7300",
        id="data-free-space-reply-minimal",
    ),
    pytest.param(
        DataPut(19, "survey/a.wav", b"RIFF", AT, reply_to=DATASTORE, replicas=2, writer=CLIENT),
        "a9617601617468646174612d7075746a726571756573742d696413687265706c792d74"
        "6f781b64746e3a2f2f73746f72652d322f7563702f6461746173746f7265646e616d65"
        "6c7375727665792f612e77617664646174614452494646626174fb41d954fc40200000"
        "687265706c696361730266777269746572781964746e3a2f2f6c6170746f702d372f75"
        "63702f636c69656e74",
        id="data-put-replicated",
    ),
    pytest.param(
        DataList(20, replicated=True),
        "a5617601617469646174612d6c6973746a726571756573742d69641469706167652d73"
        "697a651903e86a7265706c696361746564f5",
        id="data-list-replicated",
    ),
    pytest.param(
        DataListReply(
            20,
            DataStatus.OK,
            entries=(
                DataEntry(
                    "survey/a.wav",
                    4,
                    AT,
                    holder=DATASTORE,
                    replicas=2,
                    writer=CLIENT,
                    digest=DIGEST,
                ),
            ),
        ),
        "a561760161746f646174612d6c6973742d7265706c796a726571756573742d69641466"
        "7374617475730067656e747269657381a7646e616d656c7375727665792f612e776176"
        "6473697a6504626174fb41d954fc4020000066686f6c646572781b64746e3a2f2f7374"
        "6f72652d322f7563702f6461746173746f7265687265706c6963617302667772697465"
        "72781964746e3a2f2f6c6170746f702d372f7563702f636c69656e7466646967657374"
        "5820000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        id="data-list-reply-versions",
    ),
    pytest.param(
        DataDelete(21, name="survey/a.wav", reply_to=CLIENT, deleted_at=AT),
        "a761760161746b646174612d64656c6574656a726571756573742d696415687265706c"
        "792d746f781964746e3a2f2f6c6170746f702d372f7563702f636c69656e74646e616d"
        "656c7375727665792f612e7761766b6b6565702d726573756c74f5626174fb41d954fc"
        "40200000",
        id="data-delete-at",
    ),
    pytest.param(
        DataReplicate(
            22,
            "survey/a.wav",
            ("dtn://store-3/ucp/datastore", "dtn://store-4/ucp/datastore"),
            reply_to=BROKER,
        ),
        "a661760161746e646174612d7265706c69636174656a726571756573742d6964166872"
        "65706c792d746f781a64746e3a2f2f7368656c7465722d332f7563702f62726f6b6572"
        "646e616d656c7375727665792f612e776176677461726765747382781b64746e3a2f2f"
        "73746f72652d332f7563702f6461746173746f7265781b64746e3a2f2f73746f72652d"
        "342f7563702f6461746173746f7265",
        id="data-replicate-full",
    ),
    pytest.param(
        DataReplicate(23, "survey/a.wav", ("dtn://store-3/ucp/datastore",)),
        "a561760161746e646174612d7265706c69636174656a726571756573742d696417646e"
        "616d656c7375727665792f612e776176677461726765747381781b64746e3a2f2f7374"
        "6f72652d332f7563702f6461746173746f7265",
        id="data-replicate-minimal",
    ),
    pytest.param(
        DataHeld(
            DATASTORE,
            (DataEntry("survey/a.wav", 4, AT, replicas=2, writer=CLIENT, digest=DIGEST),),
        ),
        "a4617601617469646174612d68656c64646e6f6465781b64746e3a2f2f73746f72652d"
        "322f7563702f6461746173746f726567656e747269657381a6646e616d656c73757276"
        "65792f612e7761766473697a6504626174fb41d954fc40200000687265706c69636173"
        "0266777269746572781964746e3a2f2f6c6170746f702d372f7563702f636c69656e74"
        "666469676573745820000102030405060708090a0b0c0d0e0f10111213141516171819"
        "1a1b1c1d1e1f",
        id="data-held-full",
    ),
    pytest.param(
        DataHeld(DATASTORE),
        "a4617601617469646174612d68656c64646e6f6465781b64746e3a2f2f73746f72652d"
        "322f7563702f6461746173746f726567656e747269657380",
        id="data-held-minimal",
    ),
    pytest.param(
        DataGetReply(
            24, DataStatus.OK, items=(DataItem("survey/a.wav", b"RIFF", AT, writer=CLIENT),)
        ),
        "a561760161746e646174612d6765742d7265706c796a726571756573742d6964181866"
        "73746174757300656974656d7381a4646e616d656c7375727665792f612e7761766464"
        "6174614452494646626174fb41d954fc4020000066777269746572781964746e3a2f2f"
        "6c6170746f702d372f7563702f636c69656e74",
        id="data-get-reply-writer",
    ),
    pytest.param(
        DataPut(7, "runs/7/out.txt", b"x", AT, job_id=JOB_ID, exclusive=True),
        "a8617601617468646174612d7075746a726571756573742d696407646e616d656e7275"
        "6e732f372f6f75742e74787464646174614178626174fb41d954fc40200000666a6f62"
        "2d69645012345678123456781234567812345678696578636c7573697665f5",
        id="data-put-exclusive",
    ),
    # Both sides of a merge added DataPut fields (replication: replicas, writer; REC parity:
    # exclusive): each old pin above is unchanged, and together they keep the field order.
    pytest.param(
        DataPut(7, "runs/7/out.txt", b"x", AT, job_id=JOB_ID, replicas=2, exclusive=True),
        "a9617601617468646174612d7075746a726571756573742d696407646e616d656e7275"
        "6e732f372f6f75742e74787464646174614178626174fb41d954fc40200000666a6f62"
        "2d69645012345678123456781234567812345678687265706c6963617302696578636c"
        "7573697665f5",
        id="data-put-exclusive-replicated",
    ),
    pytest.param(
        DataPut(9, "notes/field.txt", b"x", AT, reply_to=CLIENT, private=True),
        "a8617601617468646174612d7075746a726571756573742d696409687265706c792d74"
        "6f781964746e3a2f2f6c6170746f702d372f7563702f636c69656e74646e616d656f6e"
        "6f7465732f6669656c642e74787464646174614178626174fb41d954fc402000006770"
        "726976617465f5",
        id="data-put-private",
    ),
    pytest.param(
        DataGetReply(
            13, DataStatus.DENIED, detail="not allowed: notes/field.txt private to its owner"
        ),
        "a561760161746e646174612d6765742d7265706c796a726571756573742d69640d6673"
        "7461747573076664657461696c78316e6f7420616c6c6f7765643a206e6f7465732f66"
        "69656c642e747874207072697661746520746f20697473206f776e6572",
        id="data-get-reply-denied",
    ),
]
